"""Signed commands (``cmd/ack``, ``cmd/replay``): HMAC-SHA256 with a per-gateway secret.

Why: on a broker the plant does not control (a shared or cloud broker), anybody who may write a
gateway's command topic could make it delete events central never applied. A gateway with a
secret accepts only commands signed with it; central signs every command it sends.

Why this wire form: the signature covers the exact bytes of the payload, so neither side has
to canonicalise JSON. The signer takes the JSON object it would have sent (``body``) and inserts
``,"sig":"<64 lowercase hex>"`` before its final ``}``; the verifier removes exactly that tail
again and recomputes ``HMAC-SHA256(secret, topic + "\\n" + body)``. The topic is inside the MAC,
so a signed ack for one gateway or channel cannot be replayed on another. docs/protocol.md
("Signed commands") specifies it with a worked example that ``tests/protocol/test_signing.py``
checks.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

MIN_SECRET_CHARS = 32
_TAIL = re.compile(rb',"sig":"([0-9a-f]{64})"\}\Z')


class SignatureError(ValueError):
    """A command that must be signed is not, or not with our secret; ``reason`` names which."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "unsigned" or "bad_signature"


def signature(secret: bytes, topic: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``topic + "\\n" + body``."""
    return hmac.new(secret, topic.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, topic: str, body: bytes) -> bytes:
    """``body`` (a JSON object with at least one member) with the ``sig`` member appended last."""
    if len(body) < 3 or body[:1] != b"{" or body[-1:] != b"}":
        raise ValueError("only a non-empty JSON object ending in '}' can be signed")
    if _TAIL.search(body):
        raise ValueError("the payload is already signed")
    return body[:-1] + b',"sig":"' + signature(secret, topic, body).encode() + b'"}'


def split(payload: bytes) -> tuple[bytes, str | None]:
    """The payload without its trailing ``sig`` member, and the signature (None when unsigned)."""
    match = _TAIL.search(payload)
    if match is None:
        return payload, None
    return payload[: match.start()] + b"}", match.group(1).decode()


def verify(secret: bytes, topic: str, payload: bytes) -> bytes:
    """The signed body of ``payload`` if its signature is ours; raises SignatureError otherwise."""
    body, sig = split(payload)
    if sig is None:
        raise SignatureError("unsigned", f"unsigned command on {topic}")
    if not hmac.compare_digest(sig, signature(secret, topic, body)):
        raise SignatureError("bad_signature", f"command on {topic} signed with another secret")
    return body


def read_secret(path: Path, what: str) -> bytes:
    """The secret in ``path`` (its first line, stripped); ``what`` names the setting in errors.

    At least 32 characters: a person-chosen short word would make the HMAC guessable offline
    from one captured command. ``python -m plantpulse.broker_auth --sign`` writes 64 hex chars.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what}: cannot read {path}: {exc}") from None
    secret = lines[0].strip() if lines else ""
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(
            f"{what}: the secret in {path} has {len(secret)} characters, at least {MIN_SECRET_CHARS} are needed "
            "(generate one with: python -m plantpulse.broker_auth --sign ...)"
        )
    return secret.encode()
