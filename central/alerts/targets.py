"""Who receives notifications, in which format (the ``notify.webhooks`` list of central's configuration).

Example::

    webhooks:
      - name: maintenance            # 维修班组群
        kind: wecom
        url: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...
      - name: shift-leaders
        kind: dingtalk
        url: https://oapi.dingtalk.com/robot/send?access_token=...
        secret: SEC...               # 加签
        min_level: 1                 # only alerts nobody acknowledged in time
        max_per_minute: 20           # the robots' limit (the default of wecom, dingtalk and feishu)
      - name: mes
        kind: generic
        url: https://mes.example.local/hooks/plantpulse
        secret: ...                  # X-Plantpulse-Signature
        lang: en

``max_per_minute`` keeps a receiver under its rate limit: at most that many requests in any 60 s, the
most urgent first (``central/alerts/ratelimit.py``). Chat robots default to 20, their documented limit
(DingTalk throttles a robot for 10 minutes beyond it); a generic receiver has none unless set; ``null``
removes a robot's.

A webhook URL with a ``key`` or ``access_token`` is a secret as much as ``secret`` is: log
``redacted_url()`` only.
"""

from __future__ import annotations

import enum
import os
from datetime import tzinfo
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from central.alerts.alert import NOTIFYING, TransitionKind
from central.alerts.conditions import Lang, Rule, Severity
from central.alerts.notifications import Notification
from central.alerts.notify_format import (
    HttpRequest,
    View,
    dingtalk_request,
    feishu_request,
    generic_request,
    wecom_request,
)
from plantpulse.protocol.models import ID_PATTERN


class WebhookKind(enum.StrEnum):
    GENERIC = "generic"
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    FEISHU = "feishu"


ROBOT_LIMIT = 20  # messages a minute: WeCom's and DingTalk's documented robot limit; Feishu's allow more
_ROBOTS = frozenset({WebhookKind.WECOM.value, WebhookKind.DINGTALK.value, WebhookKind.FEISHU.value})


class WebhookTarget(BaseModel):
    """One receiver of notifications."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., pattern=ID_PATTERN, description="a name for logs and metrics, e.g. maintenance")
    kind: WebhookKind = Field(..., description="the receiver's format: generic, wecom, dingtalk or feishu")
    url: SecretStr = Field(
        ...,
        description="the robot's or receiver's http(s) URL, e.g. "
        "https://oapi.dingtalk.com/robot/send?access_token=...; or url_env / url_file (it carries a token)",
    )
    secret: SecretStr | None = Field(
        None,
        description="signing secret: DingTalk 加签 (SEC...), Feishu 签名校验, or the generic webhook's HMAC key; "
        "WeCom robots do not sign",
    )
    lang: Lang = Field("zh", description="language of the texts: zh or en")
    feishu_card: bool = Field(True, description="Feishu only: true for an interactive card, false for a post")
    min_severity: Severity = Field(
        Severity.INFO, description="the lowest severity sent here: info, warning or critical"
    )
    min_level: int = Field(
        0, ge=0, le=10, description="send an alert's notifications once it reached this escalation level, e.g. 1"
    )
    shift_summaries: bool = Field(
        True, description="send the summary at each shift's end here (whatever min_severity and events say)"
    )
    max_per_minute: int | None = Field(
        None,
        description="at most this many requests in any 60 s, most urgent first; default 20 for wecom, dingtalk "
        "and feishu (the robots' limit), none for generic; null: no limit",
    )
    events: list[TransitionKind] = Field(
        default_factory=lambda: sorted(NOTIFYING),
        description="which transitions to send: opened, confirmed, escalated, acknowledged, resolved",
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_outside(cls, data: object) -> object:
        """``url_env``/``url_file`` and ``secret_env``/``secret_file``: keep the tokens out of the file; and
        the kind's ``max_per_minute`` when it is left out (an explicit null means no limit)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "max_per_minute" not in data:
            data["max_per_minute"] = ROBOT_LIMIT if str(data.get("kind")) in _ROBOTS else None
        for field in ("url", "secret"):
            env, file = data.pop(f"{field}_env", None), data.pop(f"{field}_file", None)
            if env is None and file is None:
                continue
            if field in data or (env is not None and file is not None):
                raise ValueError(f"give one of {field}, {field}_env or {field}_file")
            if env is not None:
                value = os.environ.get(str(env))
                if not value:
                    raise ValueError(f"environment variable {env} ({field}_env) is not set")
            else:
                try:
                    value = Path(str(file)).read_text(encoding="utf-8").splitlines()[0].strip()
                except (OSError, IndexError) as exc:
                    raise ValueError(f"cannot read {field}_file {file}: {exc}") from None
            data[field] = value
        return data

    @model_validator(mode="after")
    def _consistent(self) -> WebhookTarget:
        url = self.url.get_secret_value()
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ValueError(f"webhook {self.name}: url must be an http:// or https:// URL")
        if self.kind is WebhookKind.WECOM and self.secret is not None:
            raise ValueError(f"webhook {self.name}: WeCom group robots have no signature; remove secret")
        if self.max_per_minute is not None and self.max_per_minute < 1:
            raise ValueError(f"webhook {self.name}: max_per_minute must be at least 1 (requests in any 60 s); "
                             "leave it out for the kind's default, or null for no limit")
        quiet = [e.value for e in self.events if e not in NOTIFYING]
        if quiet:
            raise ValueError(f"webhook {self.name}: {', '.join(quiet)} never notifies; choose from {_events()}")
        return self

    def redacted_url(self) -> str:
        """Scheme and host only: safe for logs."""
        parts = urlsplit(self.url.get_secret_value())
        return f"{parts.scheme}://{parts.netloc}/…"


def _events() -> str:
    return ", ".join(sorted(NOTIFYING))


def wants(target: WebhookTarget, n: Notification) -> bool:
    """Whether ``target`` receives ``n``: its kind of event, severity and escalation level (shift summaries:
    ``shift_summaries``)."""
    if n.rule is Rule.SHIFT_SUMMARY:
        return target.shift_summaries
    return n.kind in target.events and n.severity.rank >= target.min_severity.rank and n.level >= target.min_level


def build_request(
    target: WebhookTarget, n: Notification, *, now: float, tz: tzinfo, site: str | None = None,
    link: str | None = None,
) -> HttpRequest:
    """The request to send ``n`` to ``target`` at ``now`` (sign at send time: signatures expire)."""
    view = View(target.lang, tz, site, link)
    url = target.url.get_secret_value()
    secret = target.secret.get_secret_value() if target.secret is not None else None
    if target.kind is WebhookKind.GENERIC:
        return generic_request(n, url, view, now=now, secret=secret)
    if target.kind is WebhookKind.WECOM:
        return wecom_request(n, url, view)
    if target.kind is WebhookKind.DINGTALK:
        return dingtalk_request(n, url, view, now=now, secret=secret)
    return feishu_request(n, url, view, now=now, secret=secret, card=target.feishu_card)
