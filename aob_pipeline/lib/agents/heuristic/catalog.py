"""What the heuristic agents know about the world, learnt through the tools, and entity matching against it.

``Catalog`` holds the lists the agents fetch with ordinary tool calls — sites and assets (``iot_list_sites``,
``iot_list_assets``), each asset's sensors (``iot_list_sensors``), the failure-mode catalog per equipment
class (``fmsr_list_failure_modes``), the failure-code list (``wo_list_failure_codes``) and the clock
(``iot_current_time``) — and matches the words of a request against them:

- assets by name or id ("Chiller 6", "chiller6", "CWC04006"); names that look like assets but are not in
  the catalog are kept as ``unknown_assets``;
- sites by id or name; equipment classes by their words (chiller, AHU, air-handling unit, HVAC);
- sensors by their full name (longest first, so "Supply Air Temperature Setpoint" beats "Supply Air
  Temperature"), then by most of their words ("supply air" -> "Supply Air Temperature");
- failure modes by id, or by the share of their (stemmed) words the request uses close together
  ("clogged filters" -> "Filter loading (clogged filters)"); words inside a matched sensor name never count;
- codes (``MT013``, ``RF010a``), alert rules (``RUL0008``), code categories ("Electrical").

Nothing here knows any scenario: every name comes from a tool's answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aob_pipeline.lib.agents.heuristic.language import STOPWORDS, normalize, parse_date, stem, tokens

Fetch = Callable[[str, dict[str, Any]], Any]
"""``fetch(tool, args)`` returns the tool's result, or None when the call failed."""

ASSET_LIKE = re.compile(r"\b(chiller|ahu|air[- ]handling unit|air handler|cooling tower|pump|boiler)\s*#?\s*(\d+)\b",
                        re.IGNORECASE)
ASSET_ID_LIKE = re.compile(r"\b[A-Z]{3}\d{5}\b")
CODE_RE = re.compile(r"\b([A-Z]{2}\d{3}[a-z]?)\b")
RULE_RE = re.compile(r"\b(RUL\d{3,5})\b", re.IGNORECASE)
FAILURE_MODE_ID_RE = re.compile(r"\bFM-[A-Z]{2,3}-\d{2}\b", re.IGNORECASE)
CLASS_WORDS = (
    ("AHU", re.compile(r"\b(?:ahus?|air[- ]handling units?|air[- ]handlers?)\b", re.IGNORECASE)),
    ("Chiller", re.compile(r"\bchillers?\b", re.IGNORECASE)),
    ("HVAC", re.compile(r"\bhvac\b", re.IGNORECASE)),
)
MEASUREMENT_NOUNS = ("pressure", "temperature", "temp", "level", "vibration", "speed", "flow", "humidity",
                     "current", "voltage", "status", "co2", "power", "airflow", "position", "frequency")


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass
class Span:
    """Where a match sits in the normalized text (character offsets)."""

    start: int
    end: int

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass
class Catalog:
    """The world's catalogs as the tools returned them; filled lazily through ``fetch``."""

    fetch: Fetch
    now: datetime | None = None
    telemetry_start: datetime | None = None
    telemetry_end: datetime | None = None
    sites: list[dict[str, Any]] | None = None
    assets: list[dict[str, Any]] | None = None
    sensors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failure_modes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failure_codes: list[dict[str, Any]] | None = None
    _clock_read: bool = False

    # --------------------------------------------------------------------------------- loading

    def load_clock(self) -> None:
        if self._clock_read:
            return
        self._clock_read = True
        result = self.fetch("iot_current_time", {})
        if result:
            self.now = parse_date(str(result.get("now", "")))
            self.telemetry_start = parse_date(str(result.get("telemetry_start") or ""))
            self.telemetry_end = parse_date(str(result.get("telemetry_end") or ""))

    def load_sites(self) -> list[dict[str, Any]]:
        if self.sites is None:
            result = self.fetch("iot_list_sites", {})
            self.sites = list(result.get("sites", [])) if result else []
        return self.sites

    def load_assets(self) -> list[dict[str, Any]]:
        if self.assets is None:
            result = self.fetch("iot_list_assets", {})
            self.assets = list(result.get("assets", [])) if result else []
        return self.assets

    def load_sensors(self, asset_id: str) -> list[dict[str, Any]]:
        if asset_id not in self.sensors:
            result = self.fetch("iot_list_sensors", {"asset": asset_id})
            self.sensors[asset_id] = list(result.get("sensors", [])) if result else []
        return self.sensors[asset_id]

    def load_failure_modes(self, equipment_class: str) -> list[dict[str, Any]]:
        """The class's failure modes with the shared HVAC ones (``include_hvac``)."""
        if equipment_class not in self.failure_modes:
            result = self.fetch("fmsr_list_failure_modes", {"equipment_class": equipment_class, "include_hvac": True})
            self.failure_modes[equipment_class] = list(result.get("failure_modes", [])) if result else []
        return self.failure_modes[equipment_class]

    def load_failure_codes(self) -> list[dict[str, Any]]:
        if self.failure_codes is None:
            rows: list[dict[str, Any]] = []
            page, pages = 1, 1
            while page <= pages:
                result = self.fetch("wo_list_failure_codes", {"page": page, "page_size": 500})
                if not result:
                    break
                rows.extend(result.get("codes", []))
                pages = int(result.get("pages") or 1)
                page += 1
            self.failure_codes = rows
        return self.failure_codes

    # --------------------------------------------------------------------------------- lookups

    def asset(self, key: str) -> dict[str, Any] | None:
        k = _squash(key)
        for a in self.assets or []:
            if k in (_squash(a["asset_id"]), _squash(a["name"])):
                return a
        return None

    def classes(self) -> list[str]:
        return sorted({a["equipment_class"] for a in self.assets or []})

    def representative(self, equipment_class: str) -> dict[str, Any] | None:
        """The first asset of a class (its sensors stand for the class's sensor vocabulary)."""
        for a in sorted(self.assets or [], key=lambda a: a["asset_id"]):
            if a["equipment_class"].lower() == equipment_class.lower():
                return a
        return None

    def sensor_names(self, asset_id: str) -> list[str]:
        return [s["sensor"] for s in self.sensors.get(asset_id, [])]

    def vocabulary(self) -> dict[str, set[str]]:
        """Every sensor name known so far -> the asset ids that carry it."""
        out: dict[str, set[str]] = {}
        for asset_id, rows in self.sensors.items():
            for s in rows:
                out.setdefault(s["sensor"], set()).add(asset_id)
        return out

    def all_failure_modes(self) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for rows in self.failure_modes.values():
            for m in rows:
                seen.setdefault(m["failure_mode_id"], m)
        return list(seen.values())


# ------------------------------------------------------------------------------------ matching


def find_assets(text: str, catalog: Catalog) -> tuple[list[dict[str, Any]], list[str], list[Span]]:
    """Assets named in ``text`` (catalog records, in text order), asset-like names not in the catalog, and
    the spans (in ``normalize(text)``) the names occupy."""
    norm = normalize(text)
    found: list[tuple[int, dict[str, Any]]] = []
    unknown: list[str] = []
    spans: list[Span] = []
    for m in ASSET_LIKE.finditer(norm):
        key = f"{m.group(1)} {m.group(2)}"
        record = catalog.asset(key)
        if record is None and m.group(1).lower().startswith("air"):
            record = catalog.asset(f"ahu {m.group(2)}")
        spans.append(Span(m.start(), m.end()))
        if record is None:
            pretty = f"{m.group(1).title() if not m.group(1).lower() == 'ahu' else 'AHU'} {m.group(2)}"
            if pretty not in unknown:
                unknown.append(pretty)
        elif all(r["asset_id"] != record["asset_id"] for _, r in found):
            found.append((m.start(), record))
    for m in ASSET_ID_LIKE.finditer(text):
        record = catalog.asset(m.group(0))
        if record is None:
            if m.group(0) not in unknown:
                unknown.append(m.group(0))
        elif all(r["asset_id"] != record["asset_id"] for _, r in found):
            found.append((norm.find(m.group(0).lower()), record))
        idx = norm.find(m.group(0).lower())
        if idx >= 0:
            spans.append(Span(idx, idx + len(m.group(0))))
    found.sort(key=lambda x: x[0])
    return [r for _, r in found], unknown, spans


def find_sites(text: str, catalog: Catalog) -> list[str]:
    """Site ids named in ``text`` by id (a whole word, any case) or by name."""
    out = []
    low = text.lower()
    for s in catalog.load_sites():
        sid = str(s["site_id"])
        if re.search(rf"\b{re.escape(sid)}\b", text) or (len(sid) > 3 and re.search(rf"\b{re.escape(sid.lower())}\b", low)) \
                or (s.get("name") and s["name"].lower() in low):
            out.append(sid)
    return out


def find_classes(norm_text: str, masked: list[Span]) -> list[str]:
    """Equipment classes named outside ``masked`` spans (asset and sensor names)."""
    out = []
    for cls, pattern in CLASS_WORDS:
        for m in pattern.finditer(norm_text):
            if not any(Span(m.start(), m.end()).overlaps(s) for s in masked):
                out.append(cls)
                break
    return out


def find_sensors(text: str, names: list[str], masked: list[Span] | None = None) -> list[tuple[str, Span]]:
    """Sensor names written in ``text`` in full (longest first, no overlaps), with their spans, in text order."""
    norm = normalize(text)
    taken: list[Span] = list(masked or [])
    hits: list[tuple[str, Span]] = []
    for name in sorted(set(names), key=lambda n: (-len(n), n)):
        pattern = r"(?<![a-z0-9])" + re.escape(normalize(name)).replace(r"\ ", r"\s+") + r"(?![a-z0-9])"
        for m in re.finditer(pattern, norm):
            span = Span(m.start(), m.end())
            if not any(span.overlaps(t) for t in taken):
                taken.append(span)
                hits.append((name, span))
    hits.sort(key=lambda h: h[1].start)
    return hits


def fuzzy_sensor(phrase: str, names: list[str]) -> str | None:
    """The sensor whose words a short phrase mostly uses ('supply air' -> 'Supply Air Temperature'), or None."""
    want = [stem(t) for t in tokens(phrase) if t not in STOPWORDS]
    if not want:
        return None
    best, best_score = None, 0.0
    for name in names:
        have = [stem(t) for t in tokens(name)]
        common = len(set(want) & set(have))
        if common < max(2, len(set(want))):
            continue
        score = common / len(set(have))
        if score > best_score:
            best, best_score = name, score
    return best if best_score >= 0.5 else None


def measurement_phrases(text: str, masked: list[Span]) -> list[tuple[str, Span]]:
    """Phrases that look like a measurement ('oil pressure', 'vibration level', 'CO2 level') outside
    ``masked`` spans: candidates for a sensor the request names but the asset may lack."""
    norm = normalize(text)
    chars = list(norm)
    for s in masked:  # masked words become separators a phrase cannot cross
        for i in range(s.start, min(s.end, len(chars))):
            chars[i] = "|"
    blanked = "".join(chars)
    nouns = "|".join(MEASUREMENT_NOUNS)
    out = []
    for m in re.finditer(rf"((?:[a-z0-9%]+ ){{0,3}}?)\b({nouns})\b(?: (?:sensor|level|reading))?", blanked):
        words = [w for w in m.group(0).split() if w not in STOPWORDS and not w.isdigit()]
        # drop leading words that cannot be part of a sensor name
        while words and words[0] in ("what", "average", "mean", "max", "min", "highest", "lowest", "current",
                                     "actual", "last", "daily", "hourly", "many", "much", "tons", "electrical",
                                     "show", "check", "give", "forecast", "catch", "typical"):
            words = words[1:]
        if len(words) >= 2 or (words and words[0] in ("vibration", "co2", "humidity")):
            out.append((" ".join(words), Span(m.start(), m.end())))
    return out


@dataclass
class ModeMatch:
    mode: dict[str, Any]
    score: float
    positions: frozenset[int]
    first: int


def _mode_variants(name: str) -> list[str]:
    """A failure mode's name and, for 'Filter loading (clogged filters)', the two halves too."""
    out = [name]
    inner = re.findall(r"\(([^)]*)\)", name)
    outer = re.sub(r"\([^)]*\)", " ", name).strip()
    if inner:
        out.append(outer)
        out.extend(inner)
    return out


def _verbatim(norm: str, phrase: str) -> Span | None:
    m = re.search(r"(?<![a-z0-9])" + re.escape(normalize(phrase)).replace(r"\ ", r"\s+") + r"(?![a-z0-9])", norm)
    return Span(m.start(), m.end()) if m else None


def find_failure_modes(text: str, modes: list[dict[str, Any]], masked: list[Span]) -> list[dict[str, Any]]:
    """Failure modes the request names, in text order.

    A mode's id, or its full name written out (quoted or not), always matches. Otherwise a mode matches
    when at least two of its (stemmed, non-stop) words occur within a short stretch of the request,
    covering at least half of the mode's words; words inside ``masked`` spans (asset and sensor names)
    do not count. Matches are taken greedily, best covered first, and each word of the request serves
    one mode only ('evaporator tube fouling' leaves no 'tube' for 'condenser tube leak').
    """
    norm = normalize(text)
    ids = {m["failure_mode_id"].upper(): m for m in modes}
    found: list[tuple[int, dict[str, Any]]] = []
    for i in FAILURE_MODE_ID_RE.findall(text):
        if i.upper() in ids:
            found.append((norm.find(i.lower()), ids[i.upper()]))
    verbatim_spans: list[Span] = []
    for mode in sorted(modes, key=lambda m: -len(m["failure_mode"])):
        for variant in _mode_variants(mode["failure_mode"])[:2]:
            span = _verbatim(norm, variant)
            if span and len(tokens(variant)) >= 2 and not any(span.overlaps(v) for v in verbatim_spans):
                verbatim_spans.append(span)
                found.append((span.start, mode))
                break
    words: list[tuple[int, str]] = []
    for m in re.finditer(r"[a-z0-9%]+", norm):
        span = Span(m.start(), m.end())
        if any(span.overlaps(s) for s in masked + verbatim_spans) or m.group(0) in STOPWORDS:
            continue
        words.append((m.start(), stem(m.group(0))))
    doc_freq = Counter(s for m in modes for s in set(stem(t) for t in tokens(m["failure_mode"]) if t not in STOPWORDS))
    taken_ids = {m["failure_mode_id"] for _, m in found}
    used: set[int] = set()
    while True:
        best: ModeMatch | None = None
        for mode in modes:
            if mode["failure_mode_id"] in taken_ids:
                continue
            cand = _best_window(mode, words, used, doc_freq)
            if cand is not None and (best is None or cand.score > best.score):
                best = cand
        if best is None or best.score < 0.4:
            break
        found.append((words[best.first][0], best.mode))
        taken_ids.add(best.mode["failure_mode_id"])
        used |= best.positions
    found.sort(key=lambda x: x[0])
    out: list[dict[str, Any]] = []
    for _, mode in found:
        if all(mode["failure_mode_id"] != o["failure_mode_id"] for o in out):
            out.append(mode)
    return out


def _best_window(mode: dict[str, Any], words: list[tuple[int, str]], used: set[int],
                 doc_freq: Counter) -> ModeMatch | None:
    best: ModeMatch | None = None
    for variant in _mode_variants(mode["failure_mode"]):
        want = [stem(t) for t in tokens(variant) if t not in STOPWORDS]
        if len(set(want)) < 2:
            continue
        weight = {w: 1.0 / math.log(2 + doc_freq.get(w, 0)) for w in want}
        total = sum(weight[w] for w in set(want))
        positions = [i for i, (_, s) in enumerate(words) if s in weight and i not in used]
        reach = len(want) + 3
        for i in positions:
            window = [j for j in positions if i <= j <= i + reach]
            got = {words[j][1] for j in window}
            if len(got) < 2 or len(got) / len(set(want)) < 0.5:
                continue
            score = sum(weight[w] for w in got) / total + 0.001 * len(got)
            keep = frozenset(j for j in window if words[j][1] in got)
            if best is None or score > best.score:
                best = ModeMatch(mode, score, keep, i)
    return best


def find_codes(text: str) -> list[str]:
    """Failure codes written in ``text`` (``MT013``, ``RF010a``), in order, without rule ids."""
    out = []
    for c in CODE_RE.findall(text):
        if not c.upper().startswith("RUL") and c not in out:
            out.append(c)
    return out


def find_rules(text: str) -> list[str]:
    return list(dict.fromkeys(r.upper() for r in RULE_RE.findall(text)))


def find_category(text: str, codes: list[dict[str, Any]]) -> str | None:
    """A failure-code category named in ``text`` ('Electrical', 'refrigerant-related')."""
    low = normalize(text)
    for cat in sorted({str(c["category"]) for c in codes}, key=len, reverse=True):
        stems = [stem(t) for t in tokens(cat)]
        if re.search(rf"\b{re.escape(normalize(cat))}\b", low) or all(s in {stem(t) for t in tokens(low)} for s in stems):
            return cat
    return None
