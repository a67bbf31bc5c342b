"""The ``store:`` section: the kind of store, and a malformed one said with the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.cli import main
from central.config import CentralConfig, load_central_config
from central.store.base import StoreError
from central.store.config import StoreConfig
from central.store.open import open_store
from central.store.postgres import PostgresStore
from plantpulse.configfile import ConfigError


def write(tmp_path: Path, store: str) -> Path:
    path = tmp_path / "central.yaml"
    path.write_text(f"site: s\nstore:\n{store}")
    return path


def test_sqlite_is_the_default_and_postgresql_reads_its_dsn_file(tmp_path: Path) -> None:
    assert load_central_config(write(tmp_path, "  path: c.sqlite\n")).store.kind == "sqlite"
    (tmp_path / "pg.dsn").write_text("postgresql://plantpulse@db:5432/plantpulse\n")
    cfg = load_central_config(write(tmp_path, "  kind: postgresql\n  dsn_file: pg.dsn\n")).store
    assert cfg.dsn_file == tmp_path / "pg.dsn"  # relative to the configuration file
    assert cfg.dsn() == "postgresql://plantpulse@db:5432/plantpulse"


@pytest.mark.parametrize(("text", "said"), [
    ("  kind: postgresql\n", "store.dsn_file is required with kind: postgresql"),
    ("  kind: postgres\n", "store.kind"),
    ("  dsn_file: pg.dsn\n", "store.dsn_file is only for kind: postgresql"),
    ("  kind: postgresql\n  dsn_file: pg.dsn\n  pool_size: 0\n", "store.pool_size"),
])
def test_a_malformed_store_section_names_the_field_and_the_fix(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        load_central_config(write(tmp_path, text))


@pytest.mark.parametrize(("content", "said"), [
    (None, "cannot read"),
    ("", "must be a connection string"),
    ("host=db user=x\n", "must be a connection string starting with postgresql://"),
])
def test_a_bad_dsn_file_says_what_to_put_there(tmp_path: Path, content: str | None, said: str) -> None:
    dsn_file = tmp_path / "pg.dsn"
    if content is not None:
        dsn_file.write_text(content)
    with pytest.raises(StoreError, match=said):
        StoreConfig(kind="postgresql", dsn_file=dsn_file).dsn()


async def test_open_store_opens_the_configured_kind(tmp_path: Path, pg_dsn: str) -> None:
    (tmp_path / "pg.dsn").write_text(pg_dsn)
    store = await open_store(StoreConfig(kind="postgresql", dsn_file=tmp_path / "pg.dsn"), "s")
    try:
        assert isinstance(store, PostgresStore)
    finally:
        await store.close()


@pytest.mark.parametrize("command", ["ingest", "api"])
def test_workers_and_replicas_refuse_a_sqlite_store(tmp_path: Path, command: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "  path: c.sqlite\napi: {port: 0}\n")
    assert main([command, "--config", str(path)]) == 2
    assert "needs a shared store: set store.kind: postgresql" in capsys.readouterr().err


def test_the_mqtt_client_id_is_the_sites_unless_given() -> None:
    """Two plants' centrals on one broker: one shared default client id would take over each other's session."""
    assert CentralConfig(site="suzhou-1").ingest.client_id == "plantpulse-central-suzhou-1"
    assert CentralConfig(site="ningbo-2").ingest.client_id == "plantpulse-central-ningbo-2"
    assert CentralConfig.model_validate({"site": "s", "ingest": {"client_id": "mine"}}).ingest.client_id == "mine"
