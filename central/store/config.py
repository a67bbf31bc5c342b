"""The ``store:`` section of central's configuration: where the record is kept, and for how long."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from central.store.base import Retention


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = Field(
        Path("var/central/central.sqlite"), description="SQLite database file, e.g. /var/lib/plantpulse/central.sqlite"
    )
    events_days: float = Field(
        14.0, gt=0, description="days the raw events messages are kept as received (audit, reprocessing), e.g. 14"
    )
    dead_letters_days: float = Field(30.0, gt=0, description="days dead letters are kept, e.g. 30")
    history_days: float = Field(400.0, gt=0, description="days state history, counts and gaps are kept, e.g. 400")

    def retention(self) -> Retention:
        return Retention(self.events_days, self.dead_letters_days, self.history_days)
