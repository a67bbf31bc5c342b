"""Machine and line metadata from YAML, and default entries for machines nobody configured."""

from __future__ import annotations

import pytest

from central.progress.machines import DEFAULT_MICRO_STOP, Catalog, FaultText, MachinesConfig
from central.progress.shifts import AlwaysPlanned, ShiftCalendar
from plantpulse.configfile import ConfigError, parse_yaml_model

PLANT = """
timezone: Asia/Shanghai
lines:
  - id: line-a
    name: Line A 机加工
    shifts:
      timezone: Asia/Shanghai
      shifts:
        - {name: day, days: [mon, tue, wed, thu, fri], start: '08:00', end: '17:00'}
  - id: line-b
machines:
  - id: cnc-01
    name: CNC 1 (DMG Mori)
    line: line-a
    work_centre: milling
    ideal_cycle_time: 42.5
    micro_stop_threshold: 300
    faults:
      101: {zh: 急停, en: emergency stop}
      205: {zh: 主轴过载, en: spindle overload}
  - id: inj-01
    line: line-b
"""


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(parse_yaml_model(MachinesConfig, PLANT))


def test_a_configured_machine_has_its_metadata(catalog: Catalog) -> None:
    m = catalog.machine("cnc-01")
    assert (m.name, m.line, m.work_centre, m.ideal_cycle_time, m.configured) == (
        "CNC 1 (DMG Mori)", "line-a", "milling", 42.5, True,
    )
    assert m.micro_stop_threshold == 300
    assert m.fault_text(205) == FaultText(zh="主轴过载", en="spindle overload")
    assert m.fault_text(999) is None and m.fault_text(None) is None
    assert isinstance(catalog.calendar("cnc-01"), ShiftCalendar)


def test_defaults_for_a_sparse_entry(catalog: Catalog) -> None:
    m = catalog.machine("inj-01")
    assert (m.name, m.work_centre, m.ideal_cycle_time, m.faults) == ("inj-01", None, None, {})
    assert m.micro_stop_threshold == DEFAULT_MICRO_STOP
    assert isinstance(catalog.calendar("inj-01"), AlwaysPlanned)  # line without shifts: around the clock
    assert catalog.configured_ids() == ["cnc-01", "inj-01"]


def test_a_machine_seen_only_in_events_is_created_and_flagged(catalog: Catalog) -> None:
    m = catalog.machine("lathe-9")
    assert (m.id, m.name, m.line, m.configured) == ("lathe-9", "lathe-9", None, False)
    assert m.micro_stop_threshold == DEFAULT_MICRO_STOP
    calendar = catalog.calendar("lathe-9")
    assert isinstance(calendar, AlwaysPlanned) and str(calendar.tz) == "Asia/Shanghai"


def test_an_empty_configuration_is_valid() -> None:
    catalog = Catalog(parse_yaml_model(MachinesConfig, ""))
    assert catalog.machine("x").configured is False


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("machines: [{id: m1, line: line-z}]", "names line 'line-z', which is not a line (none configured)"),
        ("machines: [{id: m1}, {id: m1}]", "machine ids must be unique; repeated: m1"),
        ("lines: [{id: a}, {id: a}]", "line ids must be unique"),
        ("machines: [{id: m1, work_center: milling}]", "did you mean 'work_centre'"),
        ("machines: [{id: m1, faults: {101: {zh: 急停}}}]", "machines[0].faults[101]"),
        ("machines: [{id: _m1}]", "machine id the edge reports"),
        ("machines: [{id: m1, ideal_cycle_time: 0}]", "seconds per part"),
        ("micro_stop_threshold: -1", "stops shorter than this"),
    ],
)
def test_configuration_errors_say_what_to_fix(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_yaml_model(MachinesConfig, yaml_text)
    assert expected in str(err.value)
