"""Shift summaries (issue 13, 每日进度汇总): which shifts ended (``windows``), their text for people (``texts``),
and the task that builds, stores and sends each once (``task``)."""
