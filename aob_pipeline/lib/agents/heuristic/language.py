"""Reading an operator's request without a model: words, stems, numbers, dates and time windows.

Pure functions over text (no tools, no world). The heuristic agents use them to find what a request asks
about; entity matching against the catalogs lives in ``catalog.py``.

Time expressions are resolved against the world's clock as the tools report it (``iot_current_time``):
``today`` is midnight of the current day; windows are half-open ``[start, end)`` like the tools'.

| expression                                   | window                                      |
|----------------------------------------------|---------------------------------------------|
| between/from DATE and/to DATE                | [DATE1, DATE2)                              |
| yesterday, "before midnight today"           | [today-1d, today)                           |
| last/past N days, weeks, months, years       | [today-N*(1, 7, 30, 365)d, today)           |
| last week / month / year, last two full days | as above with N = 1 or the written number   |
| since DATE                                   | [DATE, now)                                 |
| all the telemetry / the whole history        | [telemetry start, telemetry end)            |
| a single date ("30 June 2020", "June 3")     | [DATE, DATE+1d)                             |
| the week of DATE                             | [DATE, DATE+7d)                             |
| first / last week of June 2020, of 2020      | [1 June, 8 June), [24 June, 1 July), ...    |
| (the) June (of) 2020, April '20, sept 2015   | [1 June 2020, 1 July 2020)                  |
| May and June of 2020, May-June 2020          | [1 May 2020, 1 July 2020)                   |
| (for / in) year 2017, for 2021               | [2017-01-01, 2018-01-01)                    |
| years of 2017, 2018 and 2019; 2017-2019      | [2017-01-01, 2020-01-01)                    |

Calendar periods are read before relative ones; a year is never taken from inside a date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

STOPWORDS = frozenset("""
a an the of in on at to for from by with and or but nor is are was were be been being do does did done
has have had having it its it's this that these those there their them they we our us you your i me my
which what who whom whose when where why how many much any some all each every per than then so as
would could should can may might will shall must not no yes if into onto over under up down out off
about tell give show list name please let get got use using via across between during within whether
also just only still very really kind sort
""".split())

NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "thirty": 30,
    "twenty-four": 24, "forty-eight": 48,
}
MONTHS = {m: i + 1 for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"])}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
MONTHS["sept"] = 9

UNIT_DAYS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30, "year": 365, "years": 365}

_TOKEN = re.compile(r"[a-z0-9%]+(?:\.[0-9]+)?")
_MONTH_ALT = "|".join(sorted(MONTHS, key=len, reverse=True))
_ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?"
_LONG_DATE = rf"\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTH_ALT})\.?(?:,?\s+\d{{4}})?"
_US_DATE = rf"(?:{_MONTH_ALT})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
DATE_PATTERN = rf"(?:{_ISO_DATE}|{_LONG_DATE}|{_US_DATE})"
_DATE_RE = re.compile(DATE_PATTERN, re.IGNORECASE)
_NUMBER_WORD_ALT = "|".join(sorted((re.escape(w) for w in NUMBER_WORDS), key=len, reverse=True))


def normalize(text: str) -> str:
    """Lower case, hyphens and underscores as spaces, apostrophe-s dropped, one space between words."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"'s\b", "", text)
    text = re.sub(r"[-_/]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def stem(word: str) -> str:
    """A crude English stem, enough to match 'clogged filters' with 'Filter loading (clogged filters)'."""
    w = word.lower()
    if len(w) <= 3 or w.isdigit():
        return w
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "es" and not re.search(r"(ss|x|ch|sh|z)es$", w):
                w = w[:-1]
                break
            if suffix == "s" and w.endswith(("ss", "us", "is")):
                break
            w = w[: len(w) - len(suffix)] + repl
            if suffix in ("ing", "ed") and len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]  # clogged -> clogg -> clog
            break
    return w


def tokens(text: str) -> list[str]:
    """Words of ``text`` after ``normalize`` (numbers kept, punctuation dropped)."""
    return _TOKEN.findall(normalize(text))


def content_stems(text: str) -> list[str]:
    """Stems of the words of ``text`` that are not stop words."""
    return [stem(t) for t in tokens(text) if t not in STOPWORDS]


def number_value(word: str) -> float | None:
    """A number written in digits or as a word ('two' -> 2); None otherwise."""
    w = word.strip().lower()
    if w in NUMBER_WORDS:
        return float(NUMBER_WORDS[w])
    try:
        return float(w.replace(",", ""))
    except ValueError:
        return None


def sentences(text: str) -> list[str]:
    """Sentences of ``text`` (split after '.', '?' or '!' followed by a space and a capital or digit)."""
    parts = re.split(r"(?<=[.?!])\s+(?=[A-Z0-9\"'(])", text.strip())
    return [p.strip() for p in parts if p.strip()]


def question_part(text: str) -> str:
    """The sentences that ask something: those ending in '?' (all of the text when none does)."""
    asked = [s for s in sentences(text) if s.rstrip().endswith("?")]
    return " ".join(asked) if asked else text


# ------------------------------------------------------------------------------------------- dates


def parse_date(value: str, now: datetime | None = None) -> datetime | None:
    """A date or timestamp written as ISO, '30 June 2020', 'June 30, 2020' or 'June 3' (year of ``now``,
    or the year before when that date lies after ``now``). None when ``value`` is not a date."""
    s = value.strip().rstrip(".,;)")
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?", s)
    if m:
        y, mo, d, hh, mm, ss = m.groups()
        try:
            return datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
        except ValueError:
            return None
    low = s.lower().replace(",", " ")
    m = re.fullmatch(rf"(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_ALT})\.?(?:\s+(\d{{4}}))?", re.sub(r"\s+", " ", low))
    if m:
        day, month, year = int(m.group(1)), MONTHS[m.group(2)], m.group(3)
    else:
        m = re.fullmatch(rf"({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:\s+(\d{{4}}))?", re.sub(r"\s+", " ", low))
        if not m:
            return None
        month, day, year = MONTHS[m.group(1)], int(m.group(2)), m.group(3)
    try:
        if year:
            return datetime(int(year), month, day)
        if now is None:
            return None
        guess = datetime(now.year, month, day)
        return guess if guess <= now else datetime(now.year - 1, month, day)
    except ValueError:
        return None


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S")


def midnight(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` and the words it was read from."""

    start: datetime
    end: datetime
    phrase: str

    @property
    def start_iso(self) -> str:
        return iso(self.start)

    @property
    def end_iso(self) -> str:
        return iso(self.end)

    def describe(self) -> str:
        return f"{self.start_iso} to {self.end_iso} ({self.phrase})"


def find_dates(text: str, now: datetime | None = None) -> list[tuple[datetime, int, int]]:
    """Dates written in ``text`` with their character spans, in order."""
    out = []
    for m in _DATE_RE.finditer(text):
        d = parse_date(m.group(0), now)
        if d is not None:
            out.append((d, m.start(), m.end()))
    return out


_YEAR = r"(?:'\d{2}|(?:19|20)\d{2})"


def _year(token: str) -> int:
    token = token.strip("'")
    return 2000 + int(token) if len(token) == 2 else int(token)


def _month_start(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def find_calendar_window(text: str) -> Window | None:
    """A calendar period the text names (the week of a date, a week of a month or year, a month, months, a
    year, several years), or None. See the module table."""
    low = text.lower()
    m = re.search(r"\bweek of\s+(\d{4}-\d{2}-\d{2})", low)
    if m:
        d = parse_date(m.group(1))
        if d:
            return Window(d, d + timedelta(days=7), m.group(0))
    month = rf"(?:{_MONTH_ALT})"
    m = re.search(rf"\b(first|1st|second|2nd|third|3rd|last|final)\s+week\s+of\s+(?:the\s+)?({month})\.?"
                  rf"\s+(?:of\s+)?({_YEAR})\b", low)
    if m:
        start = _month_start(_year(m.group(3)), MONTHS[m.group(2)])
        end_of_month = _month_start(start.year, start.month + 1)
        nth = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2}.get(m.group(1))
        if nth is None:
            return Window(end_of_month - timedelta(days=7), end_of_month, m.group(0))
        start = start + timedelta(days=7 * nth)
        return Window(start, start + timedelta(days=7), m.group(0))
    m = re.search(rf"\b(first|last)\s+week\s+of\s+({_YEAR})\b", low)
    if m:
        year = _year(m.group(2))
        if m.group(1) == "first":
            return Window(datetime(year, 1, 1), datetime(year, 1, 8), m.group(0))
        return Window(datetime(year, 12, 25), datetime(year + 1, 1, 1), m.group(0))
    m = re.search(rf"\b({month})\.?\s*(?:and|to|through|until|-|–)\s*({month})\.?\s+(?:of\s+)?({_YEAR})\b", low)
    if m:
        year = _year(m.group(3))
        a, b = MONTHS[m.group(1)], MONTHS[m.group(2)]
        if a <= b:
            return Window(_month_start(year, a), _month_start(year, b + 1), m.group(0))
    for m in re.finditer(rf"\b({month})\.?\s+(?:of\s+)?({_YEAR})(?![\d-])", low):
        if re.search(r"\d(?:st|nd|rd|th)?\s*$", low[:m.start()]):
            continue  # '30 June 2020' is a date, not the month
        if re.search(r"\b(?:today is|now is|current date is|assum\w*(?: that)?(?: it is)?)\s+(?:\w+\s+){0,3}$",
                     low[max(0, m.start() - 40):m.start()]):
            continue  # 'assume today is early July 2020' sets the clock, not the period asked about
        start = _month_start(_year(m.group(2)), MONTHS[m.group(1)])
        return Window(start, _month_start(start.year, start.month + 1), m.group(0))
    years = [int(y) for y in re.findall(r"(?<![\d\-/'])((?:19|20)\d{2})(?![\d\-/])", low)]
    m = re.search(r"\b((?:19|20)\d{2})\s*(?:-|–|to|through|until)\s*((?:19|20)\d{2})\b", low)
    if m and int(m.group(1)) < int(m.group(2)):
        return Window(datetime(int(m.group(1)), 1, 1), datetime(int(m.group(2)) + 1, 1, 1), m.group(0))
    if years and re.search(r"\byears?\b|\bfor\s+(?:19|20)\d{2}\b|\bin\s+(?:19|20)\d{2}\b|\bduring\s+(?:19|20)"
                           r"\d{2}\b|\b(?:19|20)\d{2}\s*$", low) and not _DATE_RE.search(text):
        first, last = min(years), max(years)
        if last - first <= 50:
            return Window(datetime(first, 1, 1), datetime(last + 1, 1, 1),
                          f"year {first}" if first == last else f"years {first}-{last}")
    return None


def find_window(text: str, now: datetime | None, telemetry_start: datetime | None = None,
                telemetry_end: datetime | None = None) -> Window | None:
    """The time window ``text`` asks about (see the module table), or None when it names none."""
    low = text.lower()
    today = midnight(now) if now else None
    # an explicit range wins
    m = re.search(rf"(?:between|from)\s+({DATE_PATTERN})\s*(?:,\s*[^,]*,\s*)?(?:and|to|until|till|through|-)\s+"
                  rf"({DATE_PATTERN})", text, re.IGNORECASE)
    if m is None:
        m = re.search(rf"({DATE_PATTERN})\s+(?:to|until|till|through)\s+({DATE_PATTERN})", text, re.IGNORECASE)
    if m:
        a, b = parse_date(m.group(1), now), parse_date(m.group(2), now)
        if a and b and a < b:
            return Window(a, b, m.group(0))
    calendar = find_calendar_window(text)
    if calendar is not None:
        return calendar
    if re.search(r"\ball (?:of )?(?:the )?telemetry\b|\bwhole (?:telemetry|history)\b|\ball the data\b", low):
        end = telemetry_end or now
        if telemetry_start and end:
            return Window(telemetry_start, end, "all the telemetry")
    if now is None or today is None:  # the same test twice (today is None exactly when now is), for the checker
        dates = find_dates(text, now)
        if len(dates) == 1:
            d = midnight(dates[0][0])
            return Window(d, d + timedelta(days=1), text[dates[0][1]:dates[0][2]])
        return None
    m = re.search(rf"\b(?:last|past|previous)\s+(\d+|{_NUMBER_WORD_ALT})?\s*(?:full\s+|whole\s+|calendar\s+)?"
                  r"(days?|weeks?|months?|years?)\b", low)
    if m:
        n = number_value(m.group(1)) if m.group(1) else 1.0
        days = int((n or 1) * UNIT_DAYS[m.group(2)])
        return Window(today - timedelta(days=days), today, m.group(0))
    if re.search(r"\byesterday\b", low) or re.search(r"\bbefore midnight today\b", low):
        return Window(today - timedelta(days=1), today, "yesterday")
    m = re.search(rf"\bsince\s+({DATE_PATTERN})", text, re.IGNORECASE)
    if m:
        since = parse_date(m.group(1), now)
        if since and since < now:
            return Window(since, now, m.group(0))
    m = re.search(r"\bover the last (\d+) hours\b|\blast (\d+) hours\b", low)
    if m:
        hours = int(m.group(1) or m.group(2))
        return Window(now - timedelta(hours=hours), now, m.group(0))
    dates = find_dates(text, now)
    if len(dates) == 1:
        d = midnight(dates[0][0])
        return Window(d, d + timedelta(days=1), text[dates[0][1]:dates[0][2]])
    if re.search(r"\btoday\b", low) and not re.search(r"\bnext\b|\bahead\b", low):
        return Window(today, now if now > today else today + timedelta(days=1), "today")
    return None


# ------------------------------------------------------------------------------------ quantities


def find_horizon(text: str, cadence_minutes: int = 15) -> int | None:
    """Forecast horizon in steps of ``cadence_minutes`` ('next 24 hours', 'next day', '96 steps ahead')."""
    low = text.lower()
    per_hour = 60 // cadence_minutes
    m = re.search(r"\b(\d+)\s+(?:15[- ]minute\s+)?steps?\b", low)
    if m:
        return int(m.group(1))
    m = re.search(rf"\b(?:next|following|coming)\s+(\d+|{_NUMBER_WORD_ALT})\s+(hours?|days?)\b", low) or \
        re.search(rf"\b(\d+|{_NUMBER_WORD_ALT})\s+(hours?|days?)\s+(?:ahead|out|into the future)\b", low)
    if m:
        n = number_value(m.group(1)) or 1
        return int(n * per_hour * (24 if m.group(2).startswith("day") else 1))
    if re.search(r"\b(?:next|following|coming)\s+(?:day|24h)\b|\bday ahead\b|\btomorrow\b", low):
        return 24 * per_hour
    if re.search(r"\b(?:next|following|coming)\s+week\b", low):
        return 7 * 24 * per_hour
    return None


def find_threshold(text: str) -> tuple[str, float] | None:
    """A comparison with a number ('above 0.7', 'below 42', 'at least 3'): (operator, value)."""
    low = text.lower()
    m = re.search(r"\b(above|over|greater than|more than|higher than|exceed(?:s|ed|ing)?|at least|below|under|"
                  r"less than|lower than|at most)\s+(-?\d+(?:\.\d+)?)", low)
    if not m:
        return None
    word, value = m.group(1), float(m.group(2))
    op = {"at least": ">=", "at most": "<="}.get(word)
    if op is None:
        op = "<" if word in ("below", "under", "less than", "lower than") else ">"
    return op, value


def find_priority(text: str) -> int | None:
    m = re.search(r"\bpriority[- ]?(\d)\b|\bp(\d)\b", text.lower())
    return int(m.group(1) or m.group(2)) if m else None


def find_level(text: str) -> int | None:
    """A prediction-interval level ('95 %', '80% interval')."""
    m = re.search(r"\b(\d{2})\s*%\s*(?:prediction|confidence)?\s*(?:level|interval|bound)?", text.lower())
    return int(m.group(1)) if m else None


def find_alpha(text: str) -> float | None:
    m = re.search(r"\balpha\s*(?:=|of)?\s*(0?\.\d+)", text.lower())
    return float(m.group(1)) if m else None


def find_days(text: str, words: str = r"within|at most|spanning at most|span(?:ning)? at most") -> int | None:
    """A number of days after one of ``words`` ('within 14 days' -> 14)."""
    m = re.search(rf"\b(?:{words})\s+(\d+|{_NUMBER_WORD_ALT})\s+days?\b", text.lower())
    if m:
        n = number_value(m.group(1))
        return int(n) if n else None
    return None
