"""Facts a rule-based judge reads off a trajectory: tool calls, the entities they touched, what was observed.

Shared by the reference judge (``reference.py``) and tool-call accuracy (``scoring.py``):

- ``norm(text)``: the comparison form of a name or id — case-folded, only letters and digits kept
  (``"Chiller 6"``, ``"chiller-6"`` and ``"CHILLER6"`` are the same), as the tools resolve names.
- ``TraceFacts(trajectory, scenario)``: the run's tool calls (``Call``), asset aliases learnt from the
  observations (any object with ``asset_id`` and ``name``/``equipment_name`` links the two) and from the
  scenario's answer aliases, every number observed (and simple aggregates of observed lists), every text
  observed, the operator's replies, unhandled tool errors, verification statements and cross-check calls.
- ``answer_claims(text)``: the checkable claims of a final answer — numbers (with the precision written),
  ids, dates, equipment names, "work order created" and completion / verification claims.
- ``EntityScope``: which assets, sensors and windows a scenario is about, from ``required_evidence`` and the
  gold plan's literal arguments, for "did the agent touch the right entity" and "a wrong one".
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd

from aob_pipeline.lib.trace.scenario import OPERATOR_TOOL, GoldStep, JudgeScenario
from aob_pipeline.lib.trajectories.schema import Step, Trajectory

# ------------------------------------------------------------------------------------------ vocabulary

ASSET_KEYS = ("asset", "asset_id", "equipment_id", "equipment", "asset_name")
SENSOR_KEYS = ("sensor",)
FAILURE_MODE_KEYS = ("failure_mode", "failure_mode_id")
SITE_KEYS = ("site_id", "site")
CLASS_KEYS = ("equipment_class",)
CODE_KEYS = ("primary_code", "secondary_code", "code")
CODE_CATEGORY_KEYS = ("category",)
RULE_KEYS = ("rule_id", "rule")
EVIDENCE_KEYS: dict[str, tuple[str, ...]] = {
    "asset": ASSET_KEYS,
    "sensor": SENSOR_KEYS,
    "failure_mode": FAILURE_MODE_KEYS,
    "site": SITE_KEYS,
    "equipment_class": CLASS_KEYS,
    "code": CODE_KEYS,
    "code_category": CODE_CATEGORY_KEYS,
    "rule": RULE_KEYS,
}
"""Evidence kind -> the tool-argument (and top-level result) keys that name an entity of that kind."""

INFORMATIVE_ERROR_CODES = frozenset({"not_enough_data", "empty_window"})
"""Errors that are an answer, not a failure: the call was right and the data says "nothing there"
(no reading in the window, no alert or work order to compute from). Such a call counts as a valid read."""

INVALID_CALL_CODES = frozenset({"invalid_arguments", "unknown_tool", "start_after_end"})
"""Error codes that mean the call itself was malformed (besides every ``unknown_*`` code)."""

WINDOW_TOLERANCE = pd.Timedelta(minutes=15)
"""A queried window matches a named one when each bound is within one telemetry cadence of it."""

TOOL_PREFIX_GROUPS = {"iot_": "iot", "fmsr_": "fmsr", "tsfm_": "tsfm", "wo_": "wo", "kb_": "knowledge"}
CATALOG_TOOLS = frozenset({
    "iot_current_time", "iot_list_sites", "iot_list_assets", "iot_list_sensors", "iot_get_asset",
    "fmsr_list_failure_modes", "fmsr_failure_mode_sensors", "fmsr_sensor_failure_modes", "fmsr_sensor_metadata",
    "fmsr_failure_mode_details", "wo_list_failure_codes", "tsfm_list_models", "kb_search_manual",
})
"""Catalog and metadata look-ups (which sites, assets, sensors, failure modes, codes, models exist): an agent may
consult them about other entities to find its way; only data reads are held to the scenario's entities."""
GROUP_AGENT = {"iot": "iot", "fmsr": "fmsr", "knowledge": "fmsr", "tsfm": "tsfm", "wo": "wo"}
"""Which domain agent owns each tool group (the maintenance manual belongs to the FMSR agent)."""
DOMAIN_AGENTS = ("iot", "fmsr", "tsfm", "wo")
DOMAIN_TOOL_GROUPS: dict[str, tuple[str, ...]] = {
    agent: tuple(g for g, owner in GROUP_AGENT.items() if owner == agent) for agent in DOMAIN_AGENTS}
"""Tool groups each domain agent may call (``GROUP_AGENT`` read the other way)."""
COORDINATOR_NAMES = ("supervisor", "planner", "orchestrator", "coordinator")
REFUSED = re.compile(r"^\s*\[refused\]", re.IGNORECASE)
"""A message by which the runtime refused a call of another agent's tool."""

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_TRUNCATION_MARK = "…[truncated]"

VERIFY_WORDS = re.compile(
    r"\b(verif\w*|double[- ]check\w*|cross[- ]check\w*|re-?check\w*|validat\w*|sanity[- ]check\w*|confirm\w*|"
    r"consistent with|agrees? with|matches)\b", re.IGNORECASE)
VERIFY_CLAIM = re.compile(r"\b(verified|double[- ]checked|cross[- ]checked|validated|re-?checked)\b", re.IGNORECASE)
FAILURE_ACK = re.compile(
    r"(\berror\w*|\bfail\w*|could ?n[o']t|\bcannot\b|can't|\bunable\b|not (?:available|found|possible|exist\w*)|"
    r"\bunavailable\b|\bmissing\b|\bno data\b|\bno (?:such|readings?|records?)\b|\bunknown\b|does ?n[o']t (?:have|exist)|"
    r"\bhas no\b|\bhave no\b|\bno [\w%-]+ sensor\b|\bnot have\b|\bnot (?:listed|present)\b)", re.IGNORECASE)
ERROR_NOTICED = re.compile(
    r"\b(error|errors|fail|failed|fails|failure|failing|could not|couldn't|cannot|can't|unable|not found|"
    r"not available|unavailable|does not exist|doesn't exist|no such|has no|have no|there is no|unknown|missing|"
    r"invalid|not possible|did not|didn't|no data|no results?|retry|retried|try again|trying again|instead|"
    r"wrong|mistake|typo|correct(?:ed|ing)?|rejected)\b", re.IGNORECASE)
"""Words by which a later step or the final answer shows the agent noticed a tool failure (besides
``FAILURE_ACK``): a retry announced, a correction, a wrong or invalid argument named."""
COMPLETION_CLAIM = re.compile(
    r"(\ball (?:the )?(?:steps|tasks|checks)\b[^.\n]{0,30}\b(?:complete|completed|done|executed|finished|performed)\b|"
    r"\btask (?:is |has been |was )?(?:fully |successfully )?(?:complete|completed|done|finished)\b|"
    r"\bsuccessfully (?:completed|executed|created|finished|done)\b|\beverything (?:is |was )?(?:done|complete\w*)\b|"
    r"\bfully (?:completed|resolved)\b)", re.IGNORECASE)
_CREATE_VERBS = r"(?:created|drafted|opened|raised|submitted|filed|logged|issued|generated|placed)"
CREATE_CLAIM = re.compile(
    rf"\b{_CREATE_VERBS}\b[^.\n;]{{0,50}}\bwork[- ]?orders?\b|\bwork[- ]?orders?\b[^.\n;]{{0,50}}\b(?:has been|have been|was|were|is|is now)\s+{_CREATE_VERBS}\b|\bDRAFT-\d+\b",
    re.IGNORECASE)
NEGATION = re.compile(r"(\bnot\b|\bno\b|n't\b|\bnever\b|\bwithout\b|\bnor\b|\bneither\b|\bdecided against\b|\bno need\b)",
                      re.IGNORECASE)

DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\b")
ID_TOKEN = re.compile(r"\b[A-Z][A-Z0-9]*(?:[-_][A-Z0-9]+)*\b")
EQUIPMENT_NAME = re.compile(
    r"\b(?:chiller|ahu|air[- ]handling unit|boiler|pump|cooling tower|tower|fan|crah|crac|rtu)\s*#?\s*\d+\b",
    re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.])(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w])(\s*%)?")
ENUMERATION = re.compile(r"(?m)^\s*(?:\d{1,2}[.)]|[-*•])\s+|^\s*\|\s*\d{1,3}\s*(?=\|)")
YES_NO = re.compile(r"\b(yes|no|true|false|none)\b", re.IGNORECASE)


def norm(value: Any) -> str:
    """The comparison form of a name or id: case-folded, letters and digits only."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= 256:  # names, ids and short texts recur across runs and judges: remembered
        return _norm_short(text)
    return _NON_ALNUM.sub("", text.casefold())


@lru_cache(maxsize=1 << 16)
def _norm_short(text: str) -> str:
    return _NON_ALNUM.sub("", text.casefold())


@lru_cache(maxsize=1)
def _registry_groups() -> dict[str, str]:
    try:
        from aob_pipeline.lib.tools.registry import all_tools

        return {s.name: s.group for s in all_tools()}
    except Exception:  # noqa: BLE001 - the prefix convention below still names the group
        return {}


def tool_group(tool: str | None) -> str | None:
    """The tool group of ``tool`` (registry first, then the name prefix); None when unknown."""
    if not tool:
        return None
    group = _registry_groups().get(tool)
    if group:
        return group
    for prefix, name in TOOL_PREFIX_GROUPS.items():
        if tool.startswith(prefix):
            return name
    return None


def role_of(agent_name: str | None) -> str | None:
    """The domain role an ``agent_name`` claims: 'iot', 'fmsr', 'tsfm', 'wo', 'coordinator', or None (a
    single agent, 'agent', 'oracle'... — no role constraint)."""
    if not agent_name:
        return None
    name = agent_name.casefold().strip()
    for coordinator in COORDINATOR_NAMES:
        if name.startswith(coordinator):
            return "coordinator"
    head = re.split(r"[\s_:/.-]+", name)[0]
    return head if head in DOMAIN_AGENTS else None


def is_invalid_call_error(error: Mapping[str, Any] | None) -> bool:
    """True when a tool error says the call was malformed (invalid arguments, unknown tool/entity...)."""
    if not error:
        return False
    code = str(error.get("code") or "")
    return code in INVALID_CALL_CODES or code.startswith("unknown_")


def parse_ts(value: Any) -> pd.Timestamp | None:
    """A timestamp from an ISO text (a date alone is midnight); None when it is not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        ts = pd.Timestamp(str(value))
    except (ValueError, TypeError):
        return None
    if ts is pd.NaT or pd.isna(ts):
        return None
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def is_reference(value: Any) -> bool:
    """True when a gold-plan argument quotes an earlier step (``${...}``) and so has no literal value."""
    return isinstance(value, str) and "${" in value


def walk(value: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (key, leaf) of a JSON value, depth first (key is None for list elements and the root)."""
    stack: list[tuple[str | None, Any]] = [(None, value)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, Mapping):
            for k, v in item.items():
                stack.append((str(k), v))
        elif isinstance(item, (list, tuple)):
            for v in item:
                stack.append((key, v))
        else:
            yield key, item


def maybe_json(text: Any) -> Any:
    """``text`` parsed as JSON when it is a JSON object, array or scalar; else ``text`` unchanged."""
    if not isinstance(text, str):
        return text
    s = text.strip()
    if not s:
        return text
    if s[0] in "[{\"" or s in ("true", "false", "null") or re.fullmatch(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", s):
        try:
            return json.loads(s)
        except json.JSONDecodeError:
            return text
    return text


# ------------------------------------------------------------------------------------------ aliases


class AliasBook:
    """Groups of names that denote the same entity (union-find over ``norm`` forms)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def _find(self, key: str) -> str:
        parent = self._parent.setdefault(key, key)
        while parent != self._parent[parent]:
            self._parent[parent] = self._parent[self._parent[parent]]
            parent = self._parent[parent]
        self._parent[key] = parent
        return parent

    def link(self, a: Any, b: Any) -> None:
        na, nb = norm(a), norm(b)
        if na and nb:
            ra, rb = self._find(na), self._find(nb)
            if ra != rb:
                self._parent[max(ra, rb)] = min(ra, rb)

    def key(self, name: Any) -> str:
        n = norm(name)
        return self._find(n) if n else ""

    def same(self, a: Any, b: Any) -> bool:
        ka, kb = self.key(a), self.key(b)
        return bool(ka) and ka == kb


def same_sensor(a: Any, b: Any) -> bool:
    """Sensor names match ignoring case and punctuation, also when one is prefixed by the asset's name
    (``"Chiller 6 Tonnage"`` is ``"Tonnage"`` of Chiller 6, as the tools accept)."""
    na, nb = norm(a), norm(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    short, long_ = (na, nb) if len(na) < len(nb) else (nb, na)
    return len(short) >= 4 and long_.endswith(short)


def windows_match(a: tuple[pd.Timestamp, pd.Timestamp], b: tuple[pd.Timestamp, pd.Timestamp]) -> bool:
    return abs(a[0] - b[0]) <= WINDOW_TOLERANCE and abs(a[1] - b[1]) <= WINDOW_TOLERANCE


def parse_window(value: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """``"START/END"`` (a ``window:`` evidence value) as two timestamps; None when malformed."""
    start, sep, end = str(value).partition("/")
    if not sep:
        return None
    s, e = parse_ts(start.strip()), parse_ts(end.strip())
    return (s, e) if s is not None and e is not None else None


# ------------------------------------------------------------------------------------------ calls


@dataclass(frozen=True)
class Call:
    """One tool call of the run."""

    index: int
    agent_name: str
    tool: str
    args: dict[str, Any]
    observation: Any
    error: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def informative(self) -> bool:
        """The call failed with an informative error (``INFORMATIVE_ERROR_CODES``): a valid read of "no data"."""
        return self.error is not None and self.error_code in INFORMATIVE_ERROR_CODES

    @property
    def error_code(self) -> str | None:
        return None if self.error is None else str(self.error.get("code") or "unknown_error")

    @property
    def group(self) -> str | None:
        return tool_group(self.tool)

    def arg_values(self, keys: Sequence[str]) -> list[Any]:
        return [self.args[k] for k in keys if k in self.args and self.args[k] not in (None, "")]

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        s, e = parse_ts(self.args.get("start")), parse_ts(self.args.get("end"))
        return (s, e) if s is not None and e is not None else None

    @property
    def signature(self) -> str:
        """Tool and arguments in a canonical text (identical calls have identical signatures)."""
        return self.tool + json.dumps(self.args, sort_keys=True, default=str)


def _arg_view(args: Mapping[str, Any]) -> dict[str, str]:
    """Arguments as comparable texts, the window's two bounds as one entry and the page left out."""
    view = {k: json.dumps(v, sort_keys=True, default=str) for k, v in args.items() if k not in ("start", "end", "page")}
    if "start" in args or "end" in args:
        view["window"] = json.dumps([args.get("start"), args.get("end")], default=str)
    return view


def _calls(steps: Sequence[Step]) -> list[Call]:
    return [
        Call(s.index, s.agent_name, s.tool or "", dict(s.arguments or {}), s.observation, s.error)
        for s in steps if s.kind == "tool_call"
    ]


# ------------------------------------------------------------------------------------------ scope


@dataclass
class EntityScope:
    """The entities a scenario is about.

    ``assets`` / ``sensors`` / ``windows``: named by ``required_evidence`` or by a literal gold-plan argument
    (expected-error steps included: they name the entity the task is about). ``*_open``: some gold-plan
    argument of that kind quotes an earlier result (e.g. ``foreach`` over a site's assets), so the full set
    is not known in advance and "wrong entity" is not judged for that kind. ``windowed_tools``: tools the
    gold plan calls with a literal window; only their calls are held to the named windows.
    """

    assets: list[str] = field(default_factory=list)
    sensors: list[str] = field(default_factory=list)
    windows: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    assets_open: bool = False
    sensors_open: bool = False
    windows_open: bool = False
    windowed_tools: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, scenario: JudgeScenario) -> EntityScope:
        scope = cls()
        for kind, value in scenario.evidence:
            if kind == "asset":
                scope.assets.append(value)
            elif kind == "sensor":
                scope.sensors.append(value)
            elif kind == "window":
                w = parse_window(value)
                if w is not None:
                    scope.windows.append(w)
        for step in scenario.tool_steps:
            for key in ASSET_KEYS:
                if key in step.args:
                    if is_reference(step.args[key]):
                        scope.assets_open = True
                    else:
                        scope.assets.append(str(step.args[key]))
            for key in SENSOR_KEYS:
                if key in step.args:
                    if is_reference(step.args[key]):
                        scope.sensors_open = True
                    else:
                        scope.sensors.append(str(step.args[key]))
            if "start" in step.args or "end" in step.args:
                s, e = step.args.get("start"), step.args.get("end")
                if is_reference(s) or is_reference(e):
                    scope.windows_open = True
                else:
                    ps, pe = parse_ts(s), parse_ts(e)
                    if ps is not None and pe is not None:
                        scope.windows.append((ps, pe))
                        scope.windowed_tools.add(step.tool)
        # Assets named in the expected answer (an id_set of assets, a label) are on topic too.
        return scope


# ------------------------------------------------------------------------------------------ numbers


@dataclass(frozen=True)
class NumberClaim:
    value: float
    decimals: int
    text: str
    percent: bool = False


def _decimals(text: str) -> int:
    t = text.replace(",", "")
    if "e" in t.lower():
        return 6
    return len(t.split(".", 1)[1]) if "." in t else 0


class NumberBook:
    """Numbers observed in a run, for "does this number appear anywhere" with the precision written."""

    def __init__(self, values: Iterable[float]):
        clean = sorted({float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(float(v))})
        self._values = clean

    def __len__(self) -> int:
        return len(self._values)

    def near(self, target: float, tol: float) -> bool:
        i = bisect_left(self._values, target - tol)
        return i < len(self._values) and self._values[i] <= target + tol

    def supports(self, claim: NumberClaim) -> bool:
        """True when an observed number, rounded to the precision the claim is written with, gives it
        (also as a percentage of an observed fraction, or a fraction of an observed percentage)."""
        candidates = [claim.value]
        if claim.percent or claim.decimals <= 2:
            candidates.append(claim.value / 100.0)
        if abs(claim.value) <= 1:
            candidates.append(claim.value * 100.0)
        for i, target in enumerate(candidates):
            decimals = claim.decimals + (2 if i == 1 else (-2 if i == 2 else 0))
            tol = 0.5 * 10 ** (-max(decimals, 0)) + 1e-9 * max(abs(target), 1.0)
            if self.near(target, tol):
                return True
        return False


def observed_numbers(value: Any) -> list[float]:
    """Every number in a JSON value: its numeric leaves, numbers written in its text leaves, list lengths,
    and per list the count, sum, mean, min and max of each numeric field (simple aggregates an agent may
    report from what it read)."""
    out: list[float] = []

    def visit(item: Any) -> None:
        if isinstance(item, bool) or item is None:
            return
        if isinstance(item, (int, float)):
            out.append(float(item))
        elif isinstance(item, str):
            out.extend(v for v, _ in _numbers_with_precision(item))
        elif isinstance(item, Mapping):
            for v in item.values():
                visit(v)
        elif isinstance(item, (list, tuple)):
            out.append(float(len(item)))
            columns: dict[str, list[float]] = {}
            plain: list[float] = []
            for element in item:
                if isinstance(element, Mapping):
                    for k, v in element.items():
                        if isinstance(v, (int, float)) and not isinstance(v, bool):
                            columns.setdefault(str(k), []).append(float(v))
                elif isinstance(element, (int, float)) and not isinstance(element, bool):
                    plain.append(float(element))
                visit(element)
            for values in [*columns.values(), plain]:
                if values:
                    out.extend((sum(values), sum(values) / len(values), min(values), max(values)))

    visit(value)
    return out


def read_numbers(value: Any) -> list[float]:
    """Numbers a JSON value gives as values: numeric leaves and the lengths of its lists (a count of listed
    items is read off, not computed)."""
    out: list[float] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, (int, float)):
            out.append(float(item))
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            out.append(float(len(item)))
            stack.extend(item)
    return out


def _numbers_with_precision(text: str) -> list[tuple[float, int]]:
    found = []
    for m in NUMBER.finditer(text):
        raw = m.group(1)
        try:
            found.append((float(raw.replace(",", "")), _decimals(raw)))
        except ValueError:
            continue
    return found


# ------------------------------------------------------------------------------------------ claims


@dataclass
class AnswerClaims:
    """The checkable claims of a final answer."""

    numbers: list[NumberClaim] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    creates_work_order: bool = False
    completion_claims: list[str] = field(default_factory=list)
    verification_claims: list[str] = field(default_factory=list)
    acknowledges_failure: bool = False
    yes_no: bool = False
    structured: bool = False
    short_strings: list[str] = field(default_factory=list)

    @property
    def result_tokens(self) -> int:
        return len(self.numbers) + len(self.ids) + len(self.dates) + len(self.names) + int(self.yes_no)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;\n])\s+", text) if s.strip()]


def _text_claims(text: str, claims: AnswerClaims) -> None:
    body = ENUMERATION.sub(" ", text)
    for m in DATE.finditer(body):
        claims.dates.append(m.group(1))
    body = DATE.sub(" ", body)
    for m in EQUIPMENT_NAME.finditer(body):
        claims.names.append(m.group(0))
    body = EQUIPMENT_NAME.sub(" ", body)
    for m in ID_TOKEN.finditer(body):
        token = m.group(0)
        if len(token) >= 4 and any(ch.isdigit() for ch in token):
            claims.ids.append(token)
    body = ID_TOKEN.sub(lambda m: " " if any(ch.isdigit() for ch in m.group(0)) else m.group(0), body)
    for m in NUMBER.finditer(body):
        raw = m.group(1)
        try:
            value = float(raw.replace(",", ""))
        except ValueError:
            continue
        claims.numbers.append(NumberClaim(value, _decimals(raw), raw, bool(m.group(2))))
    if YES_NO.search(text):
        claims.yes_no = True
    for sentence in _sentences(text):
        if CREATE_CLAIM.search(sentence) and not NEGATION.search(sentence):
            claims.creates_work_order = True
        for m in COMPLETION_CLAIM.finditer(sentence):
            if not NEGATION.search(sentence):
                claims.completion_claims.append(m.group(0))
        for m in VERIFY_CLAIM.finditer(sentence):
            if not NEGATION.search(sentence):
                claims.verification_claims.append(m.group(0))
    if FAILURE_ACK.search(text):
        claims.acknowledges_failure = True


def split_answer(answer: str | None) -> tuple[Any, str]:
    """(value, rest) of a final answer: the whole answer parsed when it is JSON; else, when the text before
    the first blank line is JSON, that value and the text after it (an answer that gives its value and then
    comments on it); else the text itself and no rest."""
    if answer is None:
        return None, ""
    parsed = maybe_json(answer)
    if not isinstance(parsed, str):
        return parsed, ""
    head, sep, tail = answer.strip().partition("\n\n")
    if sep:
        value = maybe_json(head)
        if not isinstance(value, str):
            return value, tail.strip()
    return answer, ""


def answer_claims(answer: str | None) -> AnswerClaims:
    """The claims of a final answer (see ``read_answer_claims``). Both judges, the detectors and the scores read
    the same answers and requests many times over: the reading is remembered by text and each caller gets its
    own copy of the lists."""
    if not isinstance(answer, str) or len(answer) > 20_000:
        return read_answer_claims(answer)
    known = _remembered_claims(answer)
    fields: dict[str, Any] = {f: (list(v) if isinstance(v, list) else v) for f, v in vars(known).items()}
    return AnswerClaims(**fields)


@lru_cache(maxsize=8192)
def _remembered_claims(answer: str) -> AnswerClaims:
    return read_answer_claims(answer)


def read_answer_claims(answer: str | None) -> AnswerClaims:
    """The claims of a final answer: structured (JSON) values by their leaves, text by patterns.

    Numbers are those written (ids, dates, equipment names, list enumerations and table row numbers are
    taken out first so their digits do not count as numbers); ``creates_work_order`` is a non-negated "work
    order created / drafted / opened..." sentence, a ``DRAFT-`` id, or a true JSON field whose key says create.
    A JSON value followed by comments (``split_answer``) gives the value's claims and the comments' claims.
    """
    claims = AnswerClaims()
    if answer is None or not str(answer).strip():
        return claims
    parsed, rest = split_answer(answer)
    if isinstance(parsed, str):
        _text_claims(parsed, claims)
        return claims
    if rest:
        _text_claims(rest, claims)
    claims.structured = True
    for key, leaf in walk(parsed):
        if isinstance(leaf, bool):
            claims.yes_no = True
            if leaf and key and re.search(r"creat|draft|open|raise", key, re.IGNORECASE) and \
                    not re.search(r"should|would|recommend", key, re.IGNORECASE):
                claims.creates_work_order = True
        elif isinstance(leaf, (int, float)):
            text = repr(leaf) if isinstance(leaf, float) else str(leaf)
            claims.numbers.append(NumberClaim(float(leaf), _decimals(text) if "e" not in text else 6, text))
        elif isinstance(leaf, str):
            if len(leaf) > 60 or len(leaf.split()) > 6:
                _text_claims(leaf, claims)
            else:
                before = len(claims.numbers) + len(claims.ids) + len(claims.dates) + len(claims.names)
                _text_claims(leaf, claims)
                after = len(claims.numbers) + len(claims.ids) + len(claims.dates) + len(claims.names)
                if after == before and leaf.strip():
                    claims.short_strings.append(leaf)
    return claims


# ------------------------------------------------------------------------------------------ facts


@dataclass(frozen=True)
class ObservationFacts:
    """What one tool observation shows, whoever reads it: its numbers (``observed_numbers``), the numbers it
    gives as values (``read_numbers``), its texts (string leaves, then a mapping's keys) and the (asset id,
    name) pairs it links."""

    numbers: tuple[float, ...]
    leaves: tuple[float, ...]
    texts: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]


def _read_observation(obs: Any) -> ObservationFacts:
    texts = [leaf for _, leaf in walk(obs) if isinstance(leaf, str)]
    if isinstance(obs, Mapping):
        texts.extend(str(k) for k in obs)
    aliases = []
    stack = [obs]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            asset_id = item.get("asset_id")
            if isinstance(asset_id, str):
                for name_key in ("name", "equipment_name", "asset_name"):
                    if isinstance(item.get(name_key), str):
                        aliases.append((asset_id, item[name_key]))
            stack.extend(v for v in item.values() if isinstance(v, (Mapping, list, tuple)))
        elif isinstance(item, (list, tuple)):
            stack.extend(v for v in item if isinstance(v, (Mapping, list, tuple)))
    return ObservationFacts(tuple(observed_numbers(obs)), tuple(read_numbers(obs)), tuple(texts), tuple(aliases))


_OBSERVATIONS: dict[bytes, ObservationFacts] = {}
_OBSERVATIONS_MAX_ITEMS = 4_000_000
"""The remembered readings hold at most this many numbers and texts in all (≈ 100 MB); then they start afresh."""
_observations_items = 0


def observation_facts(obs: Any) -> ObservationFacts:
    """``ObservationFacts`` of ``obs``, remembered by content: the same tool answer recurs in many runs (every
    agent that asks the same question of the same world) and is read by both rule judges and the detectors,
    so it is walked once. The key is a digest of its JSON text (key order kept, so equal keys mean equal
    facts); an observation JSON cannot encode is read every time."""
    import hashlib

    try:
        key = hashlib.blake2b(json.dumps(obs, ensure_ascii=False, allow_nan=True).encode(), digest_size=20).digest()
    except (TypeError, ValueError):
        return _read_observation(obs)
    global _observations_items
    found = _OBSERVATIONS.get(key)
    if found is None:
        found = _read_observation(obs)
        size = len(found.numbers) + len(found.leaves) + len(found.texts) + len(found.aliases) + 1
        if _observations_items + size > _OBSERVATIONS_MAX_ITEMS:
            _OBSERVATIONS.clear()
            _observations_items = 0
        _OBSERVATIONS[key] = found
        _observations_items += size
    return found


class TraceFacts:
    """What a trajectory shows, computed once per (trajectory, scenario)."""

    def __init__(self, trajectory: Trajectory, scenario: JudgeScenario | None = None):
        self.trajectory = trajectory
        self.scenario = scenario
        self.steps = list(trajectory.steps)
        self.calls = _calls(self.steps)
        self.ok_calls = [c for c in self.calls if c.ok]
        self.questions = [s for s in self.steps if s.kind == "ask_operator"]
        self.replies = [s.content or "" for s in self.steps if s.kind == "operator_reply"]
        self.thoughts = [s for s in self.steps if s.kind in ("thought", "message")]
        self.aliases = AliasBook()
        if scenario is not None:
            for key, names in scenario.answer_aliases.items():
                for name in names:
                    self.aliases.link(key, name)
        texts: list[str] = []
        numbers: list[float] = []
        leaves: list[float] = []
        for call in self.ok_calls:
            seen = observation_facts(call.observation)
            numbers.extend(seen.numbers)
            leaves.extend(seen.leaves)
            for asset_id, name in seen.aliases:
                self.aliases.link(asset_id, name)
            texts.extend(seen.texts)
        for call in self.calls:
            if call.informative and call.error is not None:  # (informative: an error that says something)
                for key in ("message", "hint"):
                    if isinstance(call.error.get(key), str):
                        texts.append(call.error[key])
                        numbers.extend(observed_numbers(call.error[key]))
        for reply in self.replies:
            texts.append(reply)
            numbers.extend(observed_numbers(reply))
        self.observed_texts = texts
        self.observed_norms = {norm(t) for t in texts if t}
        self.observed_blob = "\n".join(t.casefold() for t in texts)
        self._observed_norm_blob = norm(self.observed_blob)
        self.observed_dates = {m.group(1) for t in texts for m in DATE.finditer(t)}
        self.numbers = NumberBook(numbers)
        self.raw_numbers = NumberBook(leaves)
        """Numbers a tool returned as values (no aggregates, no numbers inside texts): a claim found here was
        read, not computed."""
        self.expected_error_codes = {
            (s.tool, s.expect_error) for s in (scenario.gold_plan if scenario else ()) if s.expect_error
        }

    # -------------------------------------------------------------------------------- errors

    def expected_error(self, call: Call) -> bool:
        """The call failed with the error a gold-plan step of the same tool expects (robustness cases)."""
        return call.error is not None and (call.tool, call.error_code) in self.expected_error_codes

    def usable(self, call: Call) -> bool:
        """The call read something: it succeeded, met an informative error, or met the error the plan expects."""
        return call.ok or call.informative or self.expected_error(call)

    @property
    def usable_calls(self) -> list[Call]:
        return [c for c in self.calls if self.usable(c)]

    def unhandled_errors(self) -> list[Call]:
        """Failed calls (not informative, not expected by the gold plan) that no later successful call
        retried: the same tool with the same arguments but for at most one corrected argument (a window's two
        bounds count as one). The agent went on as if the call had worked, or stopped."""
        out = []
        for call in self.calls:
            if self.usable(call):
                continue
            mine = _arg_view(call.args)
            retried = False
            for later in self.ok_calls:
                if later.index > call.index and later.tool == call.tool:
                    theirs = _arg_view(later.args)
                    if sum(1 for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)) <= 1:
                        retried = True
                        break
            if not retried:
                out.append(call)
        return out

    # -------------------------------------------------------------------------------- entities

    def touched(self, kind: str, value: str, calls: Sequence[Call] | None = None, *, anywhere: bool = False) -> bool:
        """Whether the run touched entity ``kind:value``: a usable call names it in its arguments, or a
        successful call's result names it at the top level; codes, failure modes and rules also count when
        they appear anywhere in a successful result (they are looked up, not queried), and so does every kind
        with ``anywhere`` (for evidence the gold plan itself only looks up)."""
        calls = self.usable_calls if calls is None else calls
        if kind == "window":
            w = parse_window(value)
            if w is None:
                return False
            return any(c.window is not None and windows_match(c.window, w) for c in calls)
        keys = EVIDENCE_KEYS.get(kind)
        if keys is None:  # an unknown evidence kind: any argument or observed text naming the value
            target = norm(value)
            return any(norm(v) == target for c in calls for v in c.args.values() if isinstance(v, str)) or \
                target in self.observed_norms
        for call in calls:
            for v in call.arg_values(keys):
                if self.same_entity(kind, v, value):
                    return True
            if call.ok and isinstance(call.observation, Mapping):
                for k in keys:
                    v = call.observation.get(k)
                    if isinstance(v, str) and self.same_entity(kind, v, value):
                        return True
        if anywhere or kind in ("code", "failure_mode", "rule"):
            target = norm(value)
            return any(norm(t) == target for c in calls if c.ok for _, t in walk(c.observation) if isinstance(t, str))
        return False

    def same_entity(self, kind: str, a: Any, b: Any) -> bool:
        if kind == "asset":
            return self.aliases.same(a, b)
        if kind == "sensor":
            return same_sensor(a, b)
        return norm(a) == norm(b)

    def wrong_entities(self, scope: EntityScope, calls: Sequence[Call] | None = None) -> list[str]:
        """Successful calls on an asset, sensor or window outside the scenario's scope (kinds whose scope is
        open are not judged), each as ``"tool(kind=value)"``."""
        calls = self.ok_calls if calls is None else calls
        wrong = []
        for call in calls:
            wrong.extend(self.wrong_entities_of_call(call, scope))
        return wrong

    def wrong_entities_of_call(self, call: Call, scope: EntityScope) -> list[str]:
        out = []
        if scope.assets and not scope.assets_open:
            for v in call.arg_values(ASSET_KEYS):
                if not any(self.aliases.same(v, a) for a in scope.assets):
                    out.append(f"{call.tool}(asset={v})")
        if scope.sensors and not scope.sensors_open:
            for v in call.arg_values(SENSOR_KEYS):
                if not any(same_sensor(v, s) for s in scope.sensors):
                    out.append(f"{call.tool}(sensor={v})")
        if scope.windows and not scope.windows_open and call.tool in scope.windowed_tools:
            w = call.window
            if w is not None and not any(windows_match(w, s) for s in scope.windows):
                out.append(f"{call.tool}(window={call.args.get('start')}/{call.args.get('end')})")
        return out

    # -------------------------------------------------------------------------------- support

    def supports_text(self, token: str) -> bool:
        """An id or name appears in what the run observed (results, operator replies)."""
        n = norm(token)
        return bool(n) and (n in self.observed_norms or n in self._observed_norm_blob)

    def verification_statements(self) -> list[Step]:
        """Thoughts or messages stating a check, recorded after the first successful data call."""
        if not self.ok_calls:
            return []
        first = self.ok_calls[0].index
        return [s for s in self.thoughts if s.index > first and s.content and VERIFY_WORDS.search(s.content)]

    def cross_checks(self) -> list[Call]:
        """Successful calls that re-read an entity an earlier successful call already read, through another
        tool or other arguments (a re-read or cross-check; an identical repeat is repetition, not a check)."""
        seen: list[tuple[Call, set[tuple[str, str]]]] = []
        out = []
        for call in self.ok_calls:
            entities = self._entities(call)
            for earlier, earlier_entities in seen:
                if earlier.signature != call.signature and entities & earlier_entities:
                    out.append(call)
                    break
            seen.append((call, entities))
        return out

    def _entities(self, call: Call) -> set[tuple[str, str]]:
        out = set()
        for kind, keys in (("asset", ASSET_KEYS), ("sensor", SENSOR_KEYS), ("failure_mode", FAILURE_MODE_KEYS)):
            for v in call.arg_values(keys):
                out.add((kind, self.aliases.key(v) if kind == "asset" else norm(v)))
        if call.ok and isinstance(call.observation, Mapping):
            for kind, key in (("asset", "asset_id"), ("failure_mode", "failure_mode_id")):
                v = call.observation.get(key)
                if isinstance(v, str):
                    out.add((kind, self.aliases.key(v) if kind == "asset" else norm(v)))
        return out

    def announced_check(self, call: Call) -> bool:
        """The call is announced as a check: one of the two steps before it is a thought or message of the same
        agent stating a verification (a verification re-read, not a repetition)."""
        for step in self.steps[max(0, call.index - 2):call.index]:
            if step.kind in ("thought", "message") and step.agent_name == call.agent_name and step.content \
                    and VERIFY_WORDS.search(step.content):
                return True
        return False

    def repeated_calls(self) -> list[Call]:
        """Calls identical (tool and arguments) to an earlier call that had succeeded, except one re-read per
        call announced as a check (``announced_check``)."""
        done: set[str] = set()
        rechecked: set[str] = set()
        out = []
        for call in self.calls:
            if call.signature in done:
                if call.signature not in rechecked and self.announced_check(call):
                    rechecked.add(call.signature)
                else:
                    out.append(call)
            if call.ok:
                done.add(call.signature)
        return out

    def role_violations(self) -> list[tuple[int, str]]:
        """(step index, what happened) for each call made by an agent whose role it is not, in a run with named
        domain sub-agents: a domain agent calling another group's tool (the FMSR agent also reads the manual), a
        coordinator calling a domain tool itself, or a call the runtime refused as another agent's (a
        ``[refused]`` message). A single agent (no domain or coordinator name) has no roles to respect."""
        roles = {role_of(s.agent_name) for s in self.steps}
        if not roles & {*DOMAIN_AGENTS, "coordinator"}:
            return []
        out = []
        for step in self.steps:
            if step.kind in ("message", "thought") and step.content and REFUSED.match(step.content):
                out.append((step.index, f"{step.agent_name} tried to call a tool of another agent (refused at step "
                                        f"{step.index})"))
        for call in self.calls:
            role = role_of(call.agent_name)
            owner = GROUP_AGENT.get(call.group or "")
            if role == "coordinator" and owner:
                out.append((call.index, f"{call.agent_name} called {call.tool} itself instead of delegating to the "
                                        f"{owner} agent"))
            elif role in DOMAIN_AGENTS and owner and owner != role:
                out.append((call.index, f"{call.agent_name} called {call.tool}, a tool of the {owner} agent"))
        return sorted(out, key=lambda item: item[0])

    def role_problems(self) -> list[str]:
        """What ``role_violations`` found, in step order."""
        return [text for _, text in self.role_violations()]

    def acknowledged(self, call: Call) -> bool:
        """Whether the run shows it noticed failed call ``call``: a question to the operator after it, or a later
        thought, message or final answer that speaks of a failure (``FAILURE_ACK``, ``ERROR_NOTICED``) or names its
        error code or its failing argument (a string argument the error message names and no successful call of
        the tool used)."""
        code = (call.error_code or "").casefold()
        good = {str(v).casefold() for c in self.ok_calls if c.tool == call.tool for v in c.args.values()
                if isinstance(v, str)}
        message = str((call.error or {}).get("message") or "").casefold()
        named = [code] + [v.casefold() for v in call.args.values()  # the failing value the error names
                          if isinstance(v, str) and len(v) >= 3 and v.casefold() not in good and v.casefold() in message]

        def speaks_of_it(text: str) -> bool:
            folded = text.casefold()
            return bool(FAILURE_ACK.search(text) or ERROR_NOTICED.search(text)
                        or any(term and term in folded for term in named))

        for step in self.steps:
            if step.index <= call.index:
                continue
            if step.kind == "ask_operator":
                return True
            if step.kind in ("thought", "message", "final") and step.content and speaks_of_it(step.content):
                return True
        return speaks_of_it(self.trajectory.final_answer or "")

    def ignored_errors(self) -> list[Call]:
        """Tool errors the run ignored: never recovered from (``unhandled_errors``: no later successful retry) and
        never acknowledged (``acknowledged``). The one fact behind the judges' "a result although a call failed"
        and the detectors' lack of error handling."""
        return [c for c in self.unhandled_errors() if not self.acknowledged(c)]

    def rereads(self) -> list[Call]:
        """Successful identical re-reads announced as checks (a verification that re-reads the same data)."""
        seen: set[str] = set()
        out = []
        for call in self.calls:
            if call.ok and call.signature in seen and self.announced_check(call):
                out.append(call)
            if call.ok:
                seen.add(call.signature)
        return out

    # -------------------------------------------------------------------------------- gold plan

    def gold_call(self, step: GoldStep) -> Call | None:
        """The run's first call that performs gold step ``step``: same tool, succeeded (or met the step's
        expected error), and agreeing with the step's literal asset / sensor / failure-mode arguments when it
        names them; failing such a call, the first successful call of the tool."""
        if step.is_operator:
            return None
        candidates = [c for c in self.calls if c.tool == step.tool and
                      (c.ok or c.informative or (step.expect_error and c.error_code == step.expect_error))]
        for call in candidates:
            if self._agrees(call, step):
                return call
        return candidates[0] if candidates else None

    def _agrees(self, call: Call, step: GoldStep) -> bool:
        for kind, keys in (("asset", ASSET_KEYS), ("sensor", SENSOR_KEYS), ("failure_mode", FAILURE_MODE_KEYS)):
            for key in keys:
                if key in step.args and not is_reference(step.args[key]):
                    values = call.arg_values(keys)
                    if not values or not any(self.same_entity(kind, v, step.args[key]) for v in values):
                        return False
        return True

    def gold_position(self, step: GoldStep) -> int | None:
        """Step index at which the run performed gold step ``step`` (ask_operator: the first question)."""
        if step.is_operator:
            return self.questions[0].index if self.questions else None
        call = self.gold_call(step)
        return None if call is None else call.index

    def output_of(self, step: GoldStep) -> dict[str, Any] | None:
        """The run's output for gold step ``step`` in the shape gold-plan conditions read
        (``{"result": ...}`` or ``{"reply": ...}``); None when the run did not perform it successfully."""
        if step.is_operator:
            return {"reply": self.replies[0]} if self.replies else None
        call = self.gold_call(step)
        if call is None or not call.ok:
            return None if call is None or not call.informative else {"error": call.error}
        return {"result": call.observation}


def truncated(text: str | None) -> bool:
    """True when the runner cut the answer at its size limit."""
    return text is not None and bool(text) and text.rstrip().endswith(_TRUNCATION_MARK)


__all__ = [
    "ERROR_NOTICED",
    "EVIDENCE_KEYS",
    "DOMAIN_TOOL_GROUPS",
    "ASSET_KEYS",
    "AliasBook",
    "AnswerClaims",
    "CATALOG_TOOLS",
    "CLASS_KEYS",
    "CODE_CATEGORY_KEYS",
    "CODE_KEYS",
    "COMPLETION_CLAIM",
    "COORDINATOR_NAMES",
    "CREATE_CLAIM",
    "Call",
    "DATE",
    "DOMAIN_AGENTS",
    "ENUMERATION",
    "EQUIPMENT_NAME",
    "EntityScope",
    "FAILURE_ACK",
    "FAILURE_MODE_KEYS",
    "GROUP_AGENT",
    "ID_TOKEN",
    "INFORMATIVE_ERROR_CODES",
    "INVALID_CALL_CODES",
    "NEGATION",
    "NUMBER",
    "NumberBook",
    "NumberClaim",
    "OPERATOR_TOOL",
    "REFUSED",
    "RULE_KEYS",
    "SENSOR_KEYS",
    "SITE_KEYS",
    "TOOL_PREFIX_GROUPS",
    "TraceFacts",
    "VERIFY_CLAIM",
    "VERIFY_WORDS",
    "WINDOW_TOLERANCE",
    "YES_NO",
    "answer_claims",
    "is_invalid_call_error",
    "is_reference",
    "maybe_json",
    "norm",
    "observed_numbers",
    "parse_ts",
    "parse_window",
    "read_numbers",
    "role_of",
    "same_sensor",
    "split_answer",
    "tool_group",
    "truncated",
    "walk",
    "windows_match",
]
