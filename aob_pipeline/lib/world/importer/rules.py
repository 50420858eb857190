"""Alert rule logic: the condition ('Supply Temperature < 40') and duration ('for 15 minutes') a rule states."""

from __future__ import annotations

import re

_OPERATORS = {
    ">=": ">=", "=>": ">=", "≥": ">=", "<=": "<=", "=<": "<=", "≤": "<=", ">": ">", "<": "<",
    "greater than or equal to": ">=", "at least": ">=", "not below": ">=", "not less than": ">=",
    "less than or equal to": "<=", "at most": "<=", "not above": "<=", "not more than": "<=",
    "greater than": ">", "more than": ">", "higher than": ">", "exceeds": ">", "exceed": ">", "above": ">",
    "over": ">", "less than": "<", "lower than": "<", "below": "<", "under": "<",
}
_TIME_UNIT = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|[hms])\b"
_CONDITION = re.compile(
    r"(?P<lhs>.*?)\s*(?P<op>"
    + "|".join(re.escape(k) if not k[0].isalpha() else rf"\b{re.escape(k)}\b"
               for k in sorted(_OPERATORS, key=len, reverse=True))
    + r")\s*(?P<num>-?\d+(?:\.\d+)?)(?![\d.])(?!\s*" + _TIME_UNIT + r")(?!\s*[+*/^])",
    re.IGNORECASE,
)
_DURATION = re.compile(
    r"\b(?:for|over|lasting|sustained for|persists? for)\s+(?:at least\s+|more than\s+|over\s+)?"
    r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>" + _TIME_UNIT + ")",
    re.IGNORECASE,
)


def parse_rule_condition(logic: str) -> tuple[str, float, str] | None:
    """'Supply Temperature < 40 for 15 minutes' → ('<', 40.0, 'Supply Temperature'); None if no condition.

    The first comparison of something with a number is taken (a number followed by a time unit is a
    duration, not a threshold). The third item is the text before the comparison: the watched sensor when
    the rule names it. A comparison with another sensor ('Supply Temperature > Setpoint Temperature + 2')
    is not a threshold rule and gives None.
    """
    m = _CONDITION.search(logic)
    if not m:
        return None
    lhs = re.sub(r"\s+(is|are|goes|rises|drops|falls|stays|remains)$", "", m.group("lhs").strip(" :,("),
                 flags=re.IGNORECASE)
    lhs = re.sub(r"^(if|when|whenever)\s+", "", lhs, flags=re.IGNORECASE)
    return _OPERATORS[m.group("op").lower()], float(m.group("num")), lhs.strip()


def parse_rule_duration_minutes(logic: str) -> int:
    """'... for 15 minutes' → 15, '... for 2 hours' → 120; a rule that states no duration → 0 (fires at once)."""
    m = _DURATION.search(logic)
    if not m:
        return 0
    amount, unit = float(m.group("amount")), m.group("unit").lower()
    if unit.startswith("h"):
        amount *= 60
    elif unit.startswith("s"):
        amount /= 60
    return int(round(amount))

