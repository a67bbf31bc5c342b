"""Order imports from a planner's spreadsheet (issue 13): ``sheet`` reads CSV/XLSX bytes, ``rows`` turns the
template's rows into orders with row-level errors, ``upsert`` merges them into the plan by order id.
All three are pure (bytes and values in, values out); the API route and the CLI do the I/O."""
