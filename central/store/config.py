"""The ``store:`` section of central's configuration: which store keeps the record, and for how long.

``kind: sqlite`` (the default) is one file next to one central process; ``kind: postgresql`` is a
server that several ingest workers and API replicas share (docs/scaling.md). The PostgreSQL
connection string is read from ``dsn_file`` (it may hold a password), never written in the YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from central.store.base import Retention, StoreError


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["sqlite", "postgresql"] = Field(
        "sqlite", description="sqlite (one process, one file) or postgresql (workers and API replicas)"
    )
    path: Path = Field(
        Path("var/central/central.sqlite"), description="SQLite database file, e.g. /var/lib/plantpulse/central.sqlite"
    )
    dsn_file: Path | None = Field(
        None, description="kind postgresql: file whose first line is the connection string, "
        "e.g. postgresql://plantpulse@db:5432/plantpulse"
    )
    pool_size: int = Field(8, ge=1, le=200, description="kind postgresql: connections in the pool, e.g. 8")
    events_days: float = Field(
        14.0, gt=0, description="days the raw events messages are kept as received (audit, reprocessing), e.g. 14"
    )
    dead_letters_days: float = Field(30.0, gt=0, description="days dead letters are kept, e.g. 30")
    history_days: float = Field(400.0, gt=0, description="days state history, counts and gaps are kept, e.g. 400")

    @model_validator(mode="after")
    def _dsn_with_postgresql(self) -> Self:
        if self.kind == "postgresql" and self.dsn_file is None:
            raise ValueError("store.dsn_file is required with kind: postgresql: name a file whose first line is "
                             "the connection string, e.g. postgresql://plantpulse@db:5432/plantpulse")
        if self.kind == "sqlite" and self.dsn_file is not None:
            raise ValueError("store.dsn_file is only for kind: postgresql: remove it, or set kind: postgresql")
        return self

    def retention(self) -> Retention:
        return Retention(self.events_days, self.dead_letters_days, self.history_days)

    def dsn(self) -> str:
        """The PostgreSQL connection string from ``dsn_file``; a missing or empty file says what to do."""
        if self.dsn_file is None:
            raise StoreError("store.dsn_file is not set: it is needed with kind: postgresql")
        try:
            lines = self.dsn_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise StoreError(f"store.dsn_file: cannot read {self.dsn_file} ({exc.strerror}): check the path "
                             "(relative paths are taken from the configuration file's folder)") from None
        dsn = lines[0].strip() if lines else ""
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise StoreError(f"store.dsn_file: the first line of {self.dsn_file} must be a connection string "
                             "starting with postgresql://, e.g. postgresql://plantpulse@db:5432/plantpulse")
        return dsn
