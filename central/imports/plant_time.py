"""The plant's time for imports, from central's configuration (``Catalog``): its zone and shift ends."""

from __future__ import annotations

from datetime import date, tzinfo
from zoneinfo import ZoneInfo

from central.progress.machines import Catalog
from central.progress.shifts import AlwaysPlanned, ShiftCalendar


class CatalogTime:
    """``rows.PlantTime`` over the configured lines: times without an offset are in ``plant.timezone``;
    a date-only due time ends with the last shift of the machine's line (a work centre: the first
    configured machine of that centre), or at midnight for machines without a calendar."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._tz: tzinfo = ZoneInfo(catalog.config.timezone)
        self._centres: dict[str, str] = {}
        for m in catalog.config.machines:
            if m.work_centre is not None:
                self._centres.setdefault(m.work_centre, m.id)

    @property
    def tz(self) -> tzinfo:
        return self._tz

    def day_end(self, day: date, machine: str | None, work_centre: str | None) -> float | None:
        machine_id = machine if machine is not None else self._centres.get(work_centre or "")
        calendar = self.catalog.calendar(machine_id) if machine_id is not None else AlwaysPlanned(self._tz)
        if isinstance(calendar, ShiftCalendar | AlwaysPlanned):
            return calendar.day_end(day)
        return AlwaysPlanned(self._tz).day_end(day)
