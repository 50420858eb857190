"""What every heuristic skill shares: the toolbox, the journal, the outcome, the ``@skill`` registry and helpers.

A *skill* is a function ``skill(part, req, tb, facts) -> Outcome`` for one intent of
``understanding.INTENTS``, kept in the module of its domain (``skills/{iot,fmsr,tsfm,wo}.py``) and registered
with ``@skill(intent, answers=(...))`` naming the declared answer kinds it produces. It calls tools only through its ``Toolbox`` (one per acting agent: the single
agent has one for everything; the plan-execute agent gives each step the toolbox of the step's domain
agent, which refuses tools of other groups), reads earlier parts' ``facts`` ("its primary code", "those
sensors") and returns the value, a key naming it, a line of evidence and new facts.

Skills raise ``ToolFailed`` when a tool answers with an error they cannot work around, and
``CannotAnswer`` when the request lacks what the skill needs; the agents turn both into honest answers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aob_pipeline.lib.agents.heuristic.catalog import Catalog
from aob_pipeline.lib.agents.heuristic.language import STOPWORDS, iso, midnight, stem, tokens
from aob_pipeline.lib.agents.heuristic.understanding import Part, Request
from aob_pipeline.lib.trace import DOMAIN_TOOL_GROUPS

DOMAIN_GROUPS: dict[str, frozenset[str]] = {d: frozenset(groups) for d, groups in DOMAIN_TOOL_GROUPS.items()}
"""The tool groups each domain agent may use (the maintenance manual sits with the FMSR agent): the trace layer's
``DOMAIN_TOOL_GROUPS``, the one table of which agent owns which tools."""

DOMAIN_OF_GROUP = {g: d for d, groups in DOMAIN_GROUPS.items() for g in groups}
PAGE_SIZE = 500
MAX_PAGES = 40


class ToolFailed(Exception):
    """A tool answered with an error envelope."""

    def __init__(self, tool: str, args: dict[str, Any], error: Mapping[str, Any]):
        # (not ``self.args``: Exception.__init__ below resets that to the message tuple)
        self.tool, self.tool_args, self.error = tool, args, dict(error or {})
        super().__init__(f"{tool} failed: {self.error.get('code', 'error')}: {self.error.get('message', '')}")


class CannotAnswer(Exception):
    """The request lacks something the skill needs (an asset, a sensor, a failure mode, a code...)."""


class RoleViolation(RuntimeError):
    """A domain agent was asked to call a tool outside its groups (a bug of the planner, never silenced)."""


@dataclass
class Call:
    """A successful tool call the agent made and kept (evidence and verification read these)."""

    tool: str
    args: dict[str, Any]
    result: Any
    agent_name: str | None


@dataclass
class Journal:
    """Calls shared by every toolbox of one run: a cache (an identical call is not repeated) and the record."""

    calls: list[Call] = field(default_factory=list)
    used: list[Call] = field(default_factory=list)  # every successful call a result came from, cached or not
    failures: list[ToolFailed] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def key(tool: str, args: Mapping[str, Any]) -> str:
        return tool + json.dumps(args, sort_keys=True, default=str)


class Toolbox:
    """Tool access of one acting agent.

    ``agent_name`` is recorded on every call; ``groups`` (None: all) are the tool groups this agent may
    use, checked against ``tool_groups`` (the task's tool -> group map) before any call is made.
    """

    def __init__(self, env: Any, journal: Journal, agent_name: str | None = None,
                 groups: frozenset[str] | None = None, tool_groups: Mapping[str, str] | None = None):
        self.env = env
        self.journal = journal
        self.agent_name = agent_name
        self.groups = groups
        self.tool_groups = dict(tool_groups or {})

    def allowed(self, tool: str) -> bool:
        if self.groups is None:
            return True
        group = self.tool_groups.get(tool) or tool.split("_", 1)[0].replace("kb", "knowledge")
        return group in self.groups

    def call(self, tool: str, args: dict[str, Any] | None = None, *, fresh: bool = False) -> Any:
        """The result of ``tool(args)``; ``ToolFailed`` on an error envelope. An identical earlier call is
        answered from the journal unless ``fresh`` (verification re-reads)."""
        args = {k: v for k, v in (args or {}).items() if v is not None}
        if not self.allowed(tool):
            raise RoleViolation(f"{self.agent_name} may not call {tool} (groups {sorted(self.groups or [])})")
        key = Journal.key(tool, args)
        if not fresh and key in self.journal._cache:
            cached = self.journal._cache[key]
            self.journal.used.append(Call(tool, args, copy.deepcopy(cached), self.agent_name))
            return copy.deepcopy(cached)
        envelope = self.env.call_tool(tool, args, agent_name=self.agent_name)
        if not envelope.get("ok"):
            failure = ToolFailed(tool, args, envelope.get("error") or {})
            self.journal.failures.append(failure)
            raise failure
        result = envelope.get("result")
        if not fresh:
            self.journal._cache[key] = copy.deepcopy(result)
            call = Call(tool, args, copy.deepcopy(result), self.agent_name)
            self.journal.calls.append(call)
            self.journal.used.append(call)
        return result

    def fetch(self, tool: str, args: dict[str, Any]) -> Any:
        """``call`` that returns None on a tool error (catalog loading)."""
        try:
            return self.call(tool, args)
        except ToolFailed:
            return None

    def all_pages(self, tool: str, args: dict[str, Any], key: str) -> dict[str, Any]:
        """Every page of a paged tool, the list under ``key`` concatenated."""
        first = self.call(tool, {**args, "page": 1, "page_size": args.get("page_size", PAGE_SIZE)})
        merged = dict(first)
        pages = int(first.get("pages") or 1)
        for page in range(2, min(pages, MAX_PAGES) + 1):
            nxt = self.call(tool, {**args, "page": page, "page_size": args.get("page_size", PAGE_SIZE)})
            merged[key] = list(merged.get(key) or []) + list(nxt.get(key) or [])
        return merged


@dataclass
class Outcome:
    """What a skill found: ``value`` (the answer to its part), ``key`` naming it in a combined answer,
    ``evidence`` in words, and ``facts`` later parts may use."""

    value: Any
    key: str
    evidence: str
    facts: dict[str, Any] = field(default_factory=dict)
    unit: str | None = None


Skill = Callable[[Part, Request, Toolbox, dict[str, Any], Catalog], Outcome]
SKILLS: dict[str, Skill] = {}
SKILL_KINDS: dict[str, tuple[str, ...]] = {}
"""Intent -> the declared answer kinds (``aob_pipeline.lib.scenarios.answers``) its skill produces."""


def skill(name: str, *, answers: tuple[str, ...]) -> Callable[[Skill], Skill]:
    """Register the skill of intent ``name``, producing the declared answer kinds ``answers`` (an undeclared kind
    fails at import)."""
    from aob_pipeline.lib.scenarios.answers import ANSWER_KINDS

    unknown = [k for k in answers if k not in ANSWER_KINDS]
    if unknown:
        raise ValueError(f"skill {name!r}: no answer kind {', '.join(map(repr, unknown))} is declared")
    if name in SKILLS:
        raise ValueError(f"skill {name!r} defined twice")
    SKILL_KINDS[name] = tuple(answers)

    def wrap(func: Skill) -> Skill:
        def run(part: Part, req: Request, tb: Toolbox, facts: dict[str, Any], catalog: Catalog) -> Outcome:
            return func(part, scoped(req, part), tb, facts, catalog)

        run.__doc__, run.__name__, run.__wrapped__ = func.__doc__, func.__name__, func  # type: ignore[attr-defined]
        SKILLS[name] = run
        return func

    return wrap


# ------------------------------------------------------------------------------------------ helpers


def _asset(req: Request, facts: dict[str, Any], part: Part | None = None) -> dict[str, Any]:
    if part is not None and "asset" in part.uses and facts.get("asset"):
        return facts["asset"]
    if req.assets:
        return req.assets[0]
    if facts.get("asset"):
        return facts["asset"]
    if req.unknown_assets:
        raise CannotAnswer(f"{req.unknown_assets[0]} is not in the asset catalog")
    raise CannotAnswer("the request names no asset")


def _sensor(req: Request, index: int = 0) -> str:
    if len(req.sensors) > index:
        return req.sensors[index]
    if req.missing_sensors:
        raise CannotAnswer(f"no sensor called {req.missing_sensors[0]!r}")
    raise CannotAnswer("the request names no sensor")


def scoped(req: Request, part: Part) -> Request:
    """``req`` with the part's own time window, when its clause names one ("..., and how many since X")."""
    if part.window is None or part.window == req.window:
        return req
    clone = copy.copy(req)
    clone.window = part.window
    return clone


def _window(req: Request, catalog: Catalog, default_days: int | None = 1) -> tuple[str | None, str | None, str]:
    """(start, end, words) of the request's window; without one, the last ``default_days`` full days."""
    if req.window is not None:
        return req.window.start_iso, req.window.end_iso, req.window.phrase
    if default_days is None or catalog.now is None:
        return None, None, "all time"
    today = midnight(catalog.now)
    return iso(today - timedelta(days=default_days)), iso(today), f"the last {default_days} day(s) (no window given)"


def _history_window(req: Request, catalog: Catalog) -> tuple[str, str, str]:
    """History for forecasts and anomaly checks: the request's window, else all the telemetry."""
    if req.window is not None:
        return req.window.start_iso, req.window.end_iso, req.window.phrase
    start = catalog.telemetry_start or (midnight(catalog.now) - timedelta(days=7) if catalog.now else None)
    end = catalog.telemetry_end or catalog.now
    if start is None or end is None:
        raise CannotAnswer("no time window and no clock to default to")
    return iso(start), iso(end), "all the telemetry"


def _round(x: Any, digits: int = 4) -> Any:
    return round(float(x), digits) if isinstance(x, (int, float)) and not isinstance(x, bool) else x


def _top(counter: Mapping[str, float]) -> list[str]:
    if not counter:
        return []
    best = max(counter.values())
    return sorted(k for k, v in counter.items() if v == best)


def _class_of(req: Request, facts: dict[str, Any]) -> str:
    if req.assets:
        return req.assets[0]["equipment_class"]
    if facts.get("asset"):
        return facts["asset"]["equipment_class"]
    cls = req.equipment_class
    if cls:
        return cls
    if "HVAC" in req.classes:
        return "HVAC"
    raise CannotAnswer("the request names no equipment class")


def _words(text: str) -> set[str]:
    return {stem(t) for t in tokens(text) if t not in STOPWORDS}
