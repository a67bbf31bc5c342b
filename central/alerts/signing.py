"""Webhook signatures, exactly as each platform verifies them (docs/alerts.md, "Signatures").

* DingTalk 加签: ``HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret)``, base64, then
  URL-encoded; sent as the ``timestamp`` (milliseconds) and ``sign`` query parameters.
* Feishu 签名校验: ``HMAC-SHA256(key=timestamp + "\\n" + secret, msg=b"")``, base64; sent as
  ``timestamp`` (seconds, a string) and ``sign`` in the JSON body. (The key and message are the
  other way round from DingTalk's: a classic source of "sign match fail".)
* Generic webhook: ``HMAC-SHA256(key=secret, msg=timestamp + "." + body)``, hex, in the
  ``X-Plantpulse-Signature: sha256=<hex>`` header with ``X-Plantpulse-Timestamp`` (seconds); the
  timestamp inside the signed text lets a receiver refuse old replays.

Both platforms refuse a timestamp more than an hour away from their clock, so a request is
signed when it is sent (``now`` is the send time), never when the notification was queued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value (already URL-encoded) for a DingTalk robot with 加签."""
    text = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), text, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """The body's ``sign`` value for a Feishu robot with 签名校验."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def body_signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """The generic webhook's ``X-Plantpulse-Signature`` header value."""
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_body_signature(secret: str, timestamp_s: int, body: bytes, header: str) -> bool:
    """For receivers (and tests): constant-time check of a generic webhook signature."""
    return hmac.compare_digest(body_signature(secret, timestamp_s, body), header)
