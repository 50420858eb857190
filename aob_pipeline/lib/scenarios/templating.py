"""Time placeholders in scenario texts, answer parameters, gold-plan arguments and operator replies.

Scenario files never hard-code dates: every scale of the world ends its telemetry at the world's ``now``
(``world_meta`` key ``now``) and covers a scale-dependent span before it (a few days at ``tiny``, months at
``default``), so every date is written relative to ``now`` or to the start of the telemetry, and rendered
when the scenarios are materialised against a world.

Placeholder grammar (inside single braces)::

    {ANCHOR[OFFSET...][:FORMAT]}

    ANCHOR  now              the world's current time, e.g. 2024-06-03T11:45:00
            today            midnight of now's date, e.g. 2024-06-03T00:00:00
            telemetry_start  midnight of the first whole day of telemetry (world_meta telemetry_start,
                             rounded up to a midnight); windows from it to {today} hold whole days and
                             grow with the scale (use it for analyses that want all the history there is)
    OFFSET  +N or -N followed by a unit: d (days), h (hours), m (minutes); several may follow each other
    FORMAT  date      2024-06-02            (default for today and telemetry_start)
            datetime  2024-06-02T00:00:00   (default for now)
            long      2 June 2024
            weekday   Sunday
            month     June 2024
            year      2024

Examples: ``{today-1d}`` is yesterday's date, ``{today-1d:long}`` reads "2 June 2024" in a sentence,
``{now-6h}`` is six hours ago, ``{today-365d}`` starts "the last 365 days", ``{telemetry_start}`` the
first day of recorded telemetry.

Gold-plan step references (``${s1.result.assets[0].asset_id}``) use a dollar sign and are left untouched
here; the oracle resolves them when it runs the plan (see ``aob_pipeline.lib.scenarios.references``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

ANCHORS = ("now", "today", "telemetry_start")
PLACEHOLDER = re.compile(
    r"(?<!\$)\{(?P<anchor>now|today|telemetry_start)(?P<offsets>(?:[+-]\d+[dhm])*)(?::(?P<fmt>[a-z]+))?\}"
)
_OFFSET = re.compile(r"([+-])(\d+)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_ANY_BRACE_WORD = re.compile(r"(?<!\$)\{(?P<body>[^{}$]*)\}")

FORMATS = {
    "date": lambda t: t.strftime("%Y-%m-%d"),
    "datetime": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S"),
    "long": lambda t: f"{t.day} {t.strftime('%B %Y')}",
    "weekday": lambda t: t.strftime("%A"),
    "month": lambda t: t.strftime("%B %Y"),
    "year": lambda t: t.strftime("%Y"),
}


class TemplateError(ValueError):
    """A placeholder that does not follow the grammar above, or an anchor the world does not give."""


def parse_now(value: Any) -> datetime:
    """A timestamp (text from ``world_meta`` or a datetime) as a naive datetime."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"{value!r} is not a timestamp") from exc
    if pd.isna(ts):
        raise TemplateError(f"{value!r} is not a timestamp")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.to_pydatetime()


def _midnight(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day)


@dataclass(frozen=True)
class RenderClock:
    """The moments placeholders are rendered at: the world's now and, when known, its telemetry start."""

    now: datetime
    telemetry_start: datetime | None = None

    @classmethod
    def of(cls, now: Any, telemetry_start: Any = None) -> RenderClock:
        return cls(parse_now(now), parse_now(telemetry_start) if telemetry_start not in (None, "") else None)

    def anchor(self, name: str) -> datetime:
        if name == "now":
            return self.now
        if name == "today":
            return _midnight(self.now)
        if self.telemetry_start is None:
            raise TemplateError("the placeholder {telemetry_start} needs the world's telemetry_start (world_meta)")
        start = _midnight(self.telemetry_start)
        return start if start == self.telemetry_start else start + timedelta(days=1)


def _clock(clock: RenderClock | datetime | str) -> RenderClock:
    return clock if isinstance(clock, RenderClock) else RenderClock.of(clock)


def _render_one(match: re.Match[str], clock: RenderClock) -> str:
    anchor = match.group("anchor")
    moment = clock.anchor(anchor)
    for sign, amount, unit in _OFFSET.findall(match.group("offsets") or ""):
        delta = timedelta(**{_UNITS[unit]: int(amount)})
        moment = moment + delta if sign == "+" else moment - delta
    fmt = match.group("fmt") or ("datetime" if anchor == "now" else "date")
    if fmt not in FORMATS:
        raise TemplateError(f"placeholder {match.group(0)!r}: unknown format {fmt!r} (use {', '.join(FORMATS)})")
    return FORMATS[fmt](moment)


def render_text(text: str, clock: RenderClock | datetime | str) -> str:
    """Replace every time placeholder in ``text``; a brace that looks like a broken placeholder is an error."""
    clock = _clock(clock)
    for m in _ANY_BRACE_WORD.finditer(text):
        body = m.group("body")
        if re.match(r"\s*(now|today|telemetry_start)\b", body) and not PLACEHOLDER.fullmatch(m.group(0)):
            raise TemplateError(f"malformed time placeholder {m.group(0)!r} (see the grammar in templating.py)")
    return PLACEHOLDER.sub(lambda m: _render_one(m, clock), text)


def render_value(value: Any, clock: RenderClock | datetime | str) -> Any:
    """Render placeholders in every string inside ``value`` (dicts, lists and scalars)."""
    clock = _clock(clock)
    if isinstance(value, str):
        return render_text(value, clock)
    if isinstance(value, dict):
        return {k: render_value(v, clock) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, clock) for v in value]
    if isinstance(value, tuple):
        return tuple(render_value(v, clock) for v in value)
    return value


def placeholders_in(value: Any) -> list[str]:
    """Every placeholder (as written) found in ``value``; used by checks and tests."""
    found: list[str] = []
    if isinstance(value, str):
        found.extend(m.group(0) for m in PLACEHOLDER.finditer(value))
    elif isinstance(value, dict):
        for v in value.values():
            found.extend(placeholders_in(v))
    elif isinstance(value, (list, tuple)):
        for v in value:
            found.extend(placeholders_in(v))
    return found
