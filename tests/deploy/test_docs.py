"""The deployment docs' examples are real: the YAML in docs/connect-a-plc.md validates with the gateway's and
central's loaders, the commands they show exist, and every doc the README's table names is there."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from central.config import CentralConfig
from edge.config import parse_edge_config
from plantpulse.configfile import parse_yaml_model
from tests.fixtures.procs import REPO


def _yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)


def test_the_machines_of_connect_a_plc_validate() -> None:
    blocks = _yaml_blocks(REPO / "docs/connect-a-plc.md")
    machines = []
    for block in blocks:
        data = yaml.safe_load(block)
        if isinstance(data, list):  # a machine shown on its own, as an item of machines:
            machines += data
        elif "machines" in data and "plant" not in data:
            machines += data["machines"]
        elif "plant" in data:  # a section of central.yaml: the rest of the file names the site
            parse_yaml_model(CentralConfig, yaml.safe_dump({"site": "suzhou-1", **data}), source="connect-a-plc.md")
    assert {m["protocol"] for m in machines} == {"modbus", "opcua"}
    cfg = parse_edge_config(yaml.safe_dump({"edge_id": "line-a", "site": "suzhou-1", "machines": machines}),
                            source="connect-a-plc.md")
    assert [m.id for m in cfg.machines] == ["cnc-01", "press-01"]


def test_the_readme_links_every_document_that_exists() -> None:
    readme = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / target).exists(), target
    for doc in ("deployment.md", "troubleshooting.md", "connect-a-plc.md"):
        assert f"(docs/{doc})" in readme, doc


def test_deployment_commands_name_real_modules_and_files() -> None:
    text = (REPO / "docs/deployment.md").read_text()
    for module in set(re.findall(r"python -m ([a-z_.]+)", text)):
        root = REPO / module.replace(".", "/")
        assert root.with_suffix(".py").exists() or (root / "__main__.py").exists(), module
    for path in set(re.findall(r"(?<![\w/])(deploy/[\w./{},-]+\w)", text)):
        braces = re.fullmatch(r"(.*)\{(.*)\}(.*)", path)
        for one in ([braces[1] + alt + braces[3] for alt in braces[2].split(",")] if braces else [path]):
            assert (REPO / one).exists(), one
