"""The ``influx:`` settings: defaults, errors that say what to fix, and the token from env or file."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.influx.config import InfluxConfig
from plantpulse.configfile import ConfigError, parse_yaml_model

MINIMAL = "url: http://influxdb:8086\norg: plant\nbucket: plantpulse\n"


def test_defaults() -> None:
    cfg = parse_yaml_model(InfluxConfig, MINIMAL)
    assert (cfg.batch_size, cfg.flush_interval, cfg.retry_buffer, cfg.timeout, cfg.retry_max_delay) == (
        1000, 1.0, 100_000, 10.0, 30.0
    )
    assert cfg.token() is None


def test_a_misspelt_setting_names_the_right_one() -> None:
    message = r"retry_bufer \(line 4\) is not a known setting \(did you mean 'retry_buffer'"
    with pytest.raises(ConfigError, match=message):
        parse_yaml_model(InfluxConfig, MINIMAL + "retry_bufer: 10\n")


def test_a_bad_url_says_what_a_good_one_looks_like() -> None:
    with pytest.raises(ConfigError, match=r"(?s)url \(line 1\) has the bad value 'influxdb:8086'.*expected: base URL"):
        parse_yaml_model(InfluxConfig, MINIMAL.replace("http://influxdb:8086", "influxdb:8086"))


@pytest.mark.parametrize(("extra", "message"), [
    ("token_env: A\ntoken_file: /run/secrets/t\n", "token_env or token_file, not both"),
    ("batch_size: 5000\nretry_buffer: 5000\n", r"retry_buffer \(5000\) must be larger than batch_size \(5000\)"),
    ("retry_initial_delay: 5\nretry_max_delay: 1\n", "retry_max_delay"),
    ("flush_interval: 0\n", "flush_interval"),
])
def test_inconsistent_settings_are_refused(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_yaml_model(InfluxConfig, MINIMAL + extra)


def test_the_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_yaml_model(InfluxConfig, MINIMAL + "token_env: PLANTPULSE_TEST_INFLUX_TOKEN\n")
    monkeypatch.delenv("PLANTPULSE_TEST_INFLUX_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="environment variable PLANTPULSE_TEST_INFLUX_TOKEN is not set"):
        cfg.token()
    monkeypatch.setenv("PLANTPULSE_TEST_INFLUX_TOKEN", "s3cr3t")
    assert cfg.token() == "s3cr3t"


def test_the_token_comes_from_the_first_line_of_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    cfg = parse_yaml_model(InfluxConfig, MINIMAL + f"token_file: {secret}\n")
    with pytest.raises(ConfigError, match=r"influx\.token_file: cannot read the token"):
        cfg.token()
    secret.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        cfg.token()
    secret.write_text("abc123\nignored\n")
    assert cfg.token() == "abc123"
