"""The time-series schema, line by line: measurements, tags, fields, millisecond timestamps."""

from __future__ import annotations

import sqlite3

import pytest

from central.influx.points import (
    STATE_CODES,
    CountPoint,
    SeriesPoint,
    StatePoint,
    line_protocol,
    state_code,
    to_ms,
)
from plantpulse.protocol.models import MachineState

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


def test_state_point_has_name_and_code_fault_code_tags_and_ms_timestamp() -> None:
    record = StatePoint("cnc-01", "line-a", "sz", T0 + 0.1234, "fault", 101, "J-7")
    assert line_protocol([record]) == [
        'machine_state,job=J-7,line=line-a,machine=cnc-01,site=sz fault_code=101i,state="fault",state_code=4i '
        "1767225600123"
    ]


def test_missing_tags_are_left_out_and_no_fault_code_is_zero() -> None:
    record = StatePoint("cnc-01", None, None, T0, "running", None, None)
    assert line_protocol([record]) == ['machine_state,machine=cnc-01 fault_code=0i,state="running",state_code=1i '
                                       "1767225600000"]
    assert line_protocol([StatePoint("m", "", "", T0, "idle", None, "")])[0].startswith("machine_state,machine=m ")


def test_tag_values_with_spaces_commas_and_equals_are_escaped() -> None:
    [line] = line_protocol([StatePoint("press 2", "line,b", "a=b", T0, "setup", None, "J 1")])
    assert line.startswith(r"machine_state,job=J\ 1,line=line\,b,machine=press\ 2,site=a\=b ")


def test_every_canonical_state_has_its_own_code_and_unknown_names_get_minus_one() -> None:
    assert set(STATE_CODES) == {s.value for s in MachineState}
    assert len(set(STATE_CODES.values())) == len(MachineState)
    assert state_code("exploded") == -1
    [line] = line_protocol([StatePoint("m", None, None, T0, MachineState.FAULT, 7, None)])  # the enum is a str
    assert 'fault_code=7i,state="fault",state_code=4i' in line
    [line] = line_protocol([StatePoint("m", None, None, T0, "exploded", None, None)])
    assert 'state="exploded",state_code=-1i' in line


def test_count_point_has_parts_interval_and_rate_per_hour() -> None:
    """Floats without a decimal point are still floats in line protocol (integers carry an i)."""
    record = CountPoint("cnc-01", "line-a", None, T0, T0 + 90.0, 4, 1, "J-7")
    assert line_protocol([record]) == [
        "machine_count,job=J-7,line=line-a,machine=cnc-01 good=4i,interval_s=90,rate_per_hour=200,scrap=1i "
        "1767225690000"
    ]


def test_a_zero_length_count_interval_has_no_rate() -> None:
    [line] = line_protocol([CountPoint("m", None, None, T0, T0, 3, 0, None)])
    assert line == "machine_count,machine=m good=3i,interval_s=0,scrap=0i 1767225600000"


@pytest.mark.parametrize(("seconds", "ms"), [(T0, 1767225600000), (T0 + 0.0004, 1767225600000),
                                             (T0 + 0.0006, 1767225600001), (T0 + 59.999, 1767225659999)])
def test_timestamps_round_to_the_nearest_millisecond(seconds: float, ms: int) -> None:
    assert to_ms(seconds) == ms


def test_a_record_read_back_from_sqlite_gives_the_same_line_so_a_backfill_overwrites() -> None:
    """InfluxDB keeps one point per measurement, tag set and timestamp: the live write and a backfill from
    the store (edge times kept as SQLite REAL) must give identical lines, down to the millisecond."""
    live: list[SeriesPoint] = [StatePoint("m", "l", "s", T0 + i / 7, "running", None, "J") for i in range(50)]
    live += [CountPoint("m", "l", "s", T0 + i / 7, T0 + (i + 1) / 7, i, 0, None) for i in range(50)]
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE states (machine TEXT, line TEXT, site TEXT, ts REAL, state TEXT, fault INT, job TEXT)")
    db.execute("CREATE TABLE counts (machine TEXT, line TEXT, site TEXT, start REAL, ts REAL, good INT, scrap INT, "
               "job TEXT)")
    for r in live:
        if isinstance(r, StatePoint):
            db.execute("INSERT INTO states VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (r.machine_id, r.line, r.site, r.ts, r.state, r.fault_code, r.job))
        else:
            db.execute("INSERT INTO counts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (r.machine_id, r.line, r.site, r.start, r.ts, r.good, r.scrap, r.job))
    stored: list[SeriesPoint] = [StatePoint(*row) for row in db.execute("SELECT * FROM states ORDER BY rowid")]
    stored += [CountPoint(*row) for row in db.execute("SELECT * FROM counts ORDER BY rowid")]
    db.close()
    assert line_protocol(stored) == line_protocol(live)
