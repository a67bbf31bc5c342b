"""api.tls_cert / api.tls_key: checked when the configuration is read, never at the first request."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from central.config import ApiConfig


def test_tls_files_go_together_and_must_exist(tmp_path: Path) -> None:
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    with pytest.raises(ValidationError, match="go together"):
        ApiConfig(tls_cert=cert)
    with pytest.raises(ValidationError, match="no such file"):
        ApiConfig(tls_cert=cert, tls_key=key)
    cert.write_text("x")
    key.write_text("y")
    assert ApiConfig(tls_cert=cert, tls_key=key).tls_key == key
    assert ApiConfig().tls_cert is None
