"""Grafana's provisioning checked statically (no Grafana server can run here): the data source the
dashboards name exists, and every query names only measurements, fields and tags central really writes,
taken from central/influx/points.py itself (its measurement constants, and the tags and fields of the
points its own builders make), and state codes as STATE_CODES defines them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from central.influx.points import (
    COUNT_MEASUREMENT,
    OEE_MEASUREMENT,
    STATE_CODES,
    STATE_MEASUREMENT,
    CountPoint,
    OeePoint,
    StatePoint,
    line_protocol,
)
from tests.fixtures.compose import Compose
from tests.fixtures.procs import REPO

GRAFANA = REPO / "deploy/grafana"
FLUX_COLUMNS = {"_time", "_value", "_field", "_measurement", "_start", "_stop"}
Schema = dict[str, tuple[set[str], set[str]]]  # measurement -> (tags, fields)


def written_schema() -> Schema:
    """Measurements, tags and fields of the points central's own builders make (every optional value set)."""
    records = [StatePoint("m1", "line-a", "s1", 1.0, "fault", 101, "J1"),
               CountPoint("m1", "line-a", "s1", 0.0, 10.0, 3, 1, "J1"),
               OeePoint("m1", "line-a", "s1", 0.0, 3600.0, 3600.0, 1800.0, 1080.0, 900.0, 30, 6, 0.5, 0.6, 0.8, 0.25)]
    schema: Schema = {}
    for line in line_protocol(records):
        head, fields, _ts = line.split(" ")
        measurement, *tags = head.split(",")
        schema[measurement] = ({t.split("=")[0] for t in tags}, {f.split("=")[0] for f in fields.split(",")})
    assert set(schema) == {STATE_MEASUREMENT, COUNT_MEASUREMENT, OEE_MEASUREMENT}
    return schema


def dashboards() -> list[tuple[str, dict[str, Any]]]:
    files = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert len(files) >= 3
    return [(f.name, json.loads(f.read_text())) for f in files]


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # panels inside collapsed rows
    return out


def defined_columns(query: str) -> set[str]:
    """Columns a query makes itself: events.duration's columnName, the keys of map() records."""
    names = set(re.findall(r'columnName: "(\w+)"', query))
    for body in re.findall(r"map\(fn: \(r\) => \(\{(.*?)\}\)\)", query):
        names |= set(re.findall(r"(?:^|,\s*|r with\s+)([A-Za-z_]\w*):", body))
    return names


def referenced_columns(query: str) -> set[str]:
    names = set(re.findall(r"\br\.([A-Za-z_]\w*)", query)) | set(re.findall(r'\br\["(\w+)"\]', query))
    for listing in re.findall(r"(?:columns|rowKey|columnKey): \[([^\]]*)\]", query):
        names |= set(re.findall(r'"(\w+)"', listing))
    names |= set(re.findall(r'(?:\bcolumn|valueColumn|tag): "(\w+)"', query))
    return names


@pytest.fixture(scope="module")
def datasource() -> dict[str, Any]:
    data = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yaml").read_text())
    sources = data["datasources"]
    assert data["apiVersion"] == 1 and len(sources) == 1
    source: dict[str, Any] = sources[0]
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "Flux"
    return source


def test_the_dashboard_provider_reads_the_folder_compose_mounts(tmp_path: Path) -> None:
    compose = Compose(tmp_path)
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/plantpulse.yaml").read_text())["providers"][0]
    assert provider["type"] == "file"
    assert compose.host_path("grafana", provider["options"]["path"]) == GRAFANA / "dashboards"
    assert compose.host_path("grafana", "/etc/grafana/provisioning") == GRAFANA / "provisioning"


@pytest.mark.parametrize(("name", "dashboard"), dashboards())
def test_every_query_names_what_central_writes(
    name: str, dashboard: dict[str, Any], datasource: dict[str, Any],
) -> None:
    schema = written_schema()
    all_tags = set().union(*(tags for tags, _ in schema.values()))
    assert dashboard["uid"].startswith("plantpulse-") and dashboard["title"]
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    for var in variables.values():
        assert var["datasource"]["uid"] == datasource["uid"]
        assert set(re.findall(r'tag: "(\w+)"', var["query"])) <= all_tags, var["name"]
        assert set(re.findall(r'r\._measurement == "(\w+)"', var["query"])) <= set(schema)
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            query: str = target["query"]
            where = f"{name}: {panel['title']}"
            assert target["datasource"]["uid"] == datasource["uid"], where
            buckets = re.findall(r"from\(bucket: ([^)]+)\)", query)
            assert buckets and all(b in ("v.defaultBucket", f'"{datasource["jsonData"]["defaultBucket"]}"')
                                   for b in buckets), where
            measurements = set(re.findall(r'r\._measurement == "(\w+)"', query))
            assert measurements and measurements <= set(schema), f"{where}: {measurements - set(schema)}"
            tags = set().union(*(schema[m][0] for m in measurements))
            fields = set().union(*(schema[m][1] for m in measurements))
            named_fields = set(re.findall(r'r\._field == "(\w+)"', query))
            assert named_fields and named_fields <= fields, f"{where}: {named_fields - fields}"
            unknown = referenced_columns(query) - FLUX_COLUMNS - tags - fields - defined_columns(query)
            assert not unknown, f"{where}: columns central never writes: {unknown}"
            for used in re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", query):
                assert (used[0] or used[1]) in variables, f"{where}: undefined variable {used}"
            if "state_code" in named_fields:
                for code in re.findall(r"(?:r\._value|r\.state_code) [!=]= (\d+)", query):
                    assert int(code) in STATE_CODES.values(), f"{where}: state code {code}"
                for code, state in re.findall(r'r\._value == (\d+) then "(\w+)', query):
                    assert STATE_CODES[state] == int(code), f"{where}: {state} is {STATE_CODES[state]}, not {code}"


@pytest.mark.parametrize(("name", "dashboard"), dashboards())
def test_state_colours_and_names_follow_the_state_codes(name: str, dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        for mapping in panel.get("fieldConfig", {}).get("defaults", {}).get("mappings", []):
            options = mapping["options"]
            assert {int(k) for k in options} == set(STATE_CODES.values()), f"{name}: {panel['title']}"
            for state, code in STATE_CODES.items():
                assert options[str(code)]["text"].split()[0] == state


def test_every_measurement_is_on_a_dashboard_and_oee_has_its_own() -> None:
    queries = " ".join(t["query"] for _, d in dashboards() for p in panels(d) for t in p.get("targets", []))
    for measurement in written_schema():
        assert f'"{measurement}"' in queries
    oee = dict(dashboards())["oee.json"]
    fields = {f for p in panels(oee) for t in p["targets"] for f in re.findall(r'r\._field == "(\w+)"', t["query"])}
    assert {"oee", "fully_productive_s", "planned_s", "run_s", "net_run_s", "good", "scrap"} <= fields
