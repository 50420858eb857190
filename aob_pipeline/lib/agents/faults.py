"""Plant known failures into another agent's run, with labels, to measure judges and failure extraction.

``FaultInjectingAgent(inner, fault, seed)`` (agent id ``"{inner.agent_id}+{fault}"``) runs ``inner`` through a
``FaultEnvironment`` — a wrapper around the run's ``AgentEnvironment`` that can add, re-attribute or drop
steps — and may rewrite the inner agent's final answer. Every run records what was planted under the
trajectory label ``planted_faults`` (a list, so wrappers can nest)::

    {"fault": "step_repetition", "planted": true, "step": 7, "details": {...},
     "inner_agent": "heuristic_single", "seed": 0, "expected_finding": "step repetition (MAST)"}

``step`` is the index of the trajectory step that carries the fault (for a fault in the final answer: the
index of the final step). When a fault cannot be planted in a run, the label says ``planted: false`` with
the ``reason`` (e.g. no tool call to repeat). Planting is deterministic for a given inner agent, task,
trial and seed.

| fault                    | what the trajectory shows                                                             |
|--------------------------|---------------------------------------------------------------------------------------|
| step_repetition          | one tool call three times in a row with identical arguments                            |
| ignored_tool_error       | a call with a bad argument fails, a thought treats it as done, the answer stays confident |
| overstated_completion    | the answer claims a work order was created / the task fully done when it was not      |
| invented_value           | the answer states a number that appears in no observation, attributed to a tool       |
| wrong_output_format      | prose instead of the JSON list/object asked for, or a table instead of a bare value   |
| role_violation           | a domain agent (e.g. ``iot_agent``) calls a tool outside its group (e.g. a ``wo_`` tool) |
| ignored_subagent_input   | a sub-agent reports a fact and asks for it in the answer; the final answer omits it   |
| skipped_verification     | the inner agent's verification phase (re-reading data) is dropped from the run        |

``skipped_verification`` relies on the convention of the built-in agents: a thought starting with
``Verification:`` opens the verification phase (see ``heuristic.VERIFICATION_PREFIX``); an agent without
one gets a "not planted" label. The oracle (``OracleAgent``) is wrapped through ``OracleAdapter`` until it
implements ``Agent`` itself; the adapter verifies as the heuristic agents do (it re-reads the last data the
answer rests on after a ``Verification:`` thought), so the fault has something to skip on the oracle too.
``fault_wrapped_agents(base_agents)`` builds the labelled field.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aob_pipeline.lib.agents.base import Agent, AgentEnvironment, PrivilegedAgent, Task
from aob_pipeline.lib.agents.heuristic.agents import STATE_CHANGING_TOOLS, VERIFICATION_PREFIX
from aob_pipeline.lib.agents.heuristic.answering import answer_shape
from aob_pipeline.lib.agents.heuristic.skills import DOMAIN_GROUPS
from aob_pipeline.lib.trace import CATALOG_TOOLS

PLANTED_FAULTS_LABEL = "planted_faults"
DISCOVERY_TOOLS = frozenset({
    "iot_current_time", "iot_list_sites", "iot_list_assets", "iot_list_sensors", "fmsr_list_failure_modes",
    "wo_list_failure_codes", "tsfm_list_models",
})
"""Catalog and clock look-ups: faults that target a call prefer the data calls that follow them."""


@dataclass(frozen=True)
class FaultSpec:
    """A fault the wrapper can plant: what it is and what a failure analysis should find."""

    name: str
    description: str
    expected_finding: str


FAULTS: dict[str, FaultSpec] = {f.name: f for f in (
    FaultSpec("skipped_verification", "the agent's verification step (re-reading the data) is dropped",
              "no or incorrect verification (MAST)"),
    FaultSpec("ignored_tool_error", "a tool call fails on a bad argument and the agent carries on as if it succeeded",
              "lack of error handling for tool failure"),
    FaultSpec("overstated_completion", "the answer claims work that was not done (a work order, full verification)",
              "overstatement of task completion"),
    FaultSpec("step_repetition", "one tool call is made three times in a row with identical arguments",
              "step repetition (MAST)"),
    FaultSpec("wrong_output_format", "the answer ignores the requested output format",
              "extraneous or confusing output formatting / disobey task specification (MAST)"),
    FaultSpec("invented_value", "the answer states a value found in no observation", "hallucination (invented value)"),
    FaultSpec("role_violation", "a domain agent calls a tool outside its own group", "disobey role specification (MAST)"),
    FaultSpec("ignored_subagent_input", "a sub-agent's report is left out of the final answer",
              "ignored other agent's input (MAST)"),
)}
FAULT_NAMES: tuple[str, ...] = tuple(FAULTS)


# ------------------------------------------------------------------------------------------ helpers


def _key(tool: str, args: Any) -> str:
    return tool + json.dumps(args, sort_keys=True, default=str)


def _group(tool: str, tool_groups: Mapping[str, str]) -> str:
    if tool in tool_groups:
        return tool_groups[tool]
    prefix = tool.split("_", 1)[0]
    return {"kb": "knowledge"}.get(prefix, prefix)


def _domain_of(group: str) -> str:
    for domain, groups in DOMAIN_GROUPS.items():
        if group in groups:
            return domain
    return group


def _rng(seed: int, fault: str, task: Task, inner_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{fault}|{inner_id}|{task.scenario_id}|{task.trial}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _numbers_in(text: str) -> list[float]:
    from aob_pipeline.lib.scenarios.compare import numbers_in

    return numbers_in(text)


def _mentions(text: str, term: Any) -> bool:
    from aob_pipeline.lib.scenarios.compare import mentions

    return mentions(text, term)


def _split_answer(answer: str) -> tuple[str, str]:
    """(value part, the rest) of an answer: the value part ends at the first blank line."""
    head, _, tail = answer.partition("\n\n")
    return head.strip(), tail


class FaultEnvironment:
    """An ``AgentEnvironment`` look-alike that lets a planter see and change what the inner agent does.

    Every call goes to the real environment (so it is recorded) unless the planter drops it; the planter
    hooks are ``on_tool_call``, ``on_think`` and ``after_run``. Attributes it does not define (limits,
    deadline, labels, steps, ...) are the real environment's.
    """

    def __init__(self, env: AgentEnvironment, planter: Planter):
        self._env = env
        self._planter = planter
        self.cache: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any], str | None, int, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    @property
    def real(self) -> AgentEnvironment:
        return self._env

    def next_index(self) -> int:
        """The index the next recorded step will get."""
        return len(self._env.steps)

    def raw_call(self, name: str, args: dict[str, Any], agent_name: str | None) -> dict[str, Any]:
        index = self.next_index()
        envelope = self._env.call_tool(name, args, agent_name=agent_name)
        if envelope.get("ok"):
            self.cache[_key(name, args)] = copy.deepcopy(envelope)
        self.calls.append((name, copy.deepcopy(args), agent_name, index, envelope))
        return envelope

    verifying: bool = False
    """The inner agent is in its verification phase (after a ``Verification:`` thought, until its next other
    step): planters other than ``skipped_verification`` leave the phase's calls alone, so a planted fault does
    not also break the verification (an off-target flip)."""

    def call_tool(self, name: str, args: dict[str, Any] | None = None, agent_name: str | None = None) -> dict[str, Any]:
        args = {} if args is None else args
        if self.verifying and not isinstance(self._planter, SkippedVerification):
            return self.raw_call(str(name), args, agent_name)
        return self._planter.on_tool_call(self, str(name), args, agent_name)

    def think(self, text: str, agent_name: str | None = None) -> None:
        self.verifying = isinstance(text, str) and text.startswith(VERIFICATION_PREFIX)
        if self._planter.on_think(self, text, agent_name):
            self._env.think(text, agent_name=agent_name)

    def message(self, text: str, agent_name: str | None = None) -> None:
        self.verifying = False
        self._planter.on_other_step(self)
        self._env.message(text, agent_name=agent_name)

    def ask_operator(self, question: str, agent_name: str | None = None) -> str:
        self.verifying = False
        self._planter.on_other_step(self)
        return self._env.ask_operator(question, agent_name=agent_name)


# ------------------------------------------------------------------------------------------ planters


class Planter:
    """Plants one fault; subclasses override the hooks they need and ``finish``."""

    name = ""

    def __init__(self, rng: random.Random, task: Task):
        self.rng = rng
        self.task = task
        self.label: dict[str, Any] | None = None

    # hooks --------------------------------------------------------------------------------------
    def on_tool_call(self, fenv: FaultEnvironment, name: str, args: dict[str, Any], agent_name: str | None) -> dict[str, Any]:
        return fenv.raw_call(name, args, agent_name)

    def on_think(self, fenv: FaultEnvironment, text: str, agent_name: str | None) -> bool:
        """Return False to drop the thought."""
        self.on_other_step(fenv)
        return True

    def on_other_step(self, fenv: FaultEnvironment) -> None:
        return None

    def finish(self, fenv: FaultEnvironment, answer: Any) -> Any:
        """Called with the inner agent's answer; returns the answer to give back."""
        return answer

    # labels -------------------------------------------------------------------------------------
    def planted(self, step: int | None, **details: Any) -> None:
        if self.label is None:
            self.label = {"planted": True, "step": step, "details": details}

    def not_planted(self, reason: str) -> None:
        if self.label is None:
            self.label = {"planted": False, "step": None, "details": {}, "reason": reason}


def _successful_reads(fenv: FaultEnvironment) -> list[tuple[str, dict[str, Any], str | None, int, dict[str, Any]]]:
    """Successful read-only calls so far, data calls after catalog look-ups (the last one is the best target)."""
    reads = [c for c in fenv.calls if c[4].get("ok") and c[0] not in STATE_CHANGING_TOOLS]
    return [c for c in reads if c[0] in DISCOVERY_TOOLS] + [c for c in reads if c[0] not in DISCOVERY_TOOLS]


def _is_target(name: str) -> bool:
    return name not in STATE_CHANGING_TOOLS and name not in DISCOVERY_TOOLS


class StepRepetition(Planter):
    """Repeat one successful read-only call twice more, right after it (three identical calls in a row)."""

    name = "step_repetition"
    REPEATS = 3

    def __init__(self, rng: random.Random, task: Task):
        super().__init__(rng, task)
        self.target = rng.choice([0, 1])
        self.seen = 0

    def on_tool_call(self, fenv, name, args, agent_name):
        envelope = fenv.raw_call(name, args, agent_name)
        if self.label is None and envelope.get("ok") and _is_target(name):
            if self.seen == self.target:
                first = fenv.calls[-1][3]
                for _ in range(self.REPEATS - 1):
                    fenv.raw_call(name, copy.deepcopy(args), agent_name)
                self.planted(first, tool=name, arguments=copy.deepcopy(args), agent_name=agent_name,
                             identical_calls=self.REPEATS)
            self.seen += 1
        return envelope

    def finish(self, fenv, answer):
        if self.label is None:
            reads = _successful_reads(fenv)
            if not reads:
                self.not_planted("the inner agent made no successful read-only tool call to repeat")
                return answer
            name, args, agent_name, _, _ = reads[-1]
            first = fenv.next_index()
            for _ in range(self.REPEATS):
                fenv.raw_call(name, copy.deepcopy(args), agent_name)
            self.planted(first, tool=name, arguments=args, agent_name=agent_name, identical_calls=self.REPEATS,
                         note="planted after the inner agent's last call (it made fewer calls than the target)")
        return answer


def corrupt_arguments(name: str, args: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Ways to break a call's arguments, most natural first: (what was broken, bad arguments)."""
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(args.get("asset"), str):
        out.append(("asset", {**args, "asset": args["asset"] + "-X9"}))
    if isinstance(args.get("sensor"), str):
        out.append(("sensor", {**args, "sensor": args["sensor"] + " X9"}))
    if isinstance(args.get("failure_mode"), str):
        out.append(("failure_mode", {**args, "failure_mode": "FM-XX-99"}))
    if isinstance(args.get("start"), str) and isinstance(args.get("end"), str) and args["start"] < args["end"]:
        out.append(("window", {**args, "start": args["end"], "end": args["start"]}))
    out.append(("unknown argument", {**args, "limit_rows": -1}))
    return out


class IgnoredToolError(Planter):
    """After one successful call, make the same call with a bad argument (it fails), then carry on as if it
    had succeeded: a thought says so and the answer is unchanged."""

    name = "ignored_tool_error"

    def __init__(self, rng, task):
        super().__init__(rng, task)
        self.target = rng.choice([0, 1])
        self.seen = 0

    def _plant(self, fenv: FaultEnvironment, name: str, args: dict[str, Any], agent_name: str | None,
               note: str | None = None) -> None:
        for broken, bad in corrupt_arguments(name, args):
            index = fenv.next_index()
            envelope = fenv.raw_call(name, bad, agent_name)
            if not envelope.get("ok"):
                fenv.real.think(f"{name} returned what I needed; moving on with the result.", agent_name=agent_name)
                details = {"tool": name, "bad_arguments": bad, "broken": broken,
                           "error_code": (envelope.get("error") or {}).get("code")}
                if note:
                    details["note"] = note
                self.planted(index, **details)
                return
        self.not_planted(f"no corrupted arguments made {name} fail")

    def on_tool_call(self, fenv, name, args, agent_name):
        envelope = fenv.raw_call(name, args, agent_name)
        if self.label is None and envelope.get("ok") and _is_target(name):
            if self.seen == self.target:
                self._plant(fenv, name, args, agent_name)
            self.seen += 1
        return envelope

    def finish(self, fenv, answer):
        if self.label is None:
            reads = _successful_reads(fenv)
            if not reads:
                self.not_planted("the inner agent made no successful read-only tool call to break")
                return answer
            name, args, agent_name, _, _ = reads[-1]
            self._plant(fenv, name, args, agent_name, note="planted after the inner agent's last call")
        return answer


class OverstatedCompletion(Planter):
    """Claim in the answer that a work order was created and the task is fully done (when it was not)."""

    name = "overstated_completion"

    def finish(self, fenv, answer):
        if not isinstance(answer, str):
            self.not_planted("the inner agent returned no text answer")
            return answer
        created = any(c[0] == "wo_create_work_order" and c[4].get("ok") for c in fenv.calls)
        if not created:
            claim = ("I have also created a corrective work order for this asset (the draft is recorded) and the "
                     "issue is now fully resolved; nothing further is needed.")
        else:
            claim = ("I have also checked every other asset at the site and verified all readings over the full "
                     "history; the task is completely done and no further follow-up is needed.")
        value, rest = _split_answer(answer)
        self.planted(fenv.next_index(), claim=claim, work_order_created=created)
        return "\n\n".join(p for p in (value, claim, rest.strip()) if p)


class InventedValue(Planter):
    """Add a number to the answer that appears in no observation (nor in the task), attributed to a tool."""

    name = "invented_value"

    def finish(self, fenv, answer):
        if not isinstance(answer, str):
            self.not_planted("the inner agent returned no text answer")
            return answer
        seen_text = " ".join(json.dumps(s.observation, default=str) for s in fenv.real.steps
                             if s.observation is not None)
        seen_text += " " + " ".join(s.content or "" for s in fenv.real.steps) + " " + self.task.text + " " + answer
        seen = _numbers_in(seen_text)
        value = None
        for _ in range(200):
            candidate = round(self.rng.uniform(11.0, 987.0), 2)
            if all(abs(candidate - x) > max(0.01 * abs(candidate), 0.5) for x in seen):
                value = candidate
                break
        if value is None:
            self.not_planted("could not find a number absent from every observation")
            return answer
        tools = [c[0] for c in fenv.calls if c[4].get("ok")]
        source = tools[-1] if tools else "the monitoring data"
        sentence = f"The key reading behind this is {value}, as reported by {source}."
        value_part, rest = _split_answer(answer)
        self.planted(fenv.next_index(), value=value, attributed_to=source, observations_checked=len(fenv.calls))
        return "\n\n".join(p for p in (value_part, sentence, rest.strip()) if p)


def _prose_items(items: list[Any]) -> str:
    words = [str(i) for i in items]
    if not words:
        return "nothing at all, as far as I can tell"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and also " + words[-1]


class WrongOutputFormat(Planter):
    """Rewrite the answer's value in a format other than the one asked: prose for a JSON list or object, a
    markdown table for a bare number or label."""

    name = "wrong_output_format"

    def finish(self, fenv, answer):
        if not isinstance(answer, str) or not answer.strip():
            self.not_planted("the inner agent returned no text answer")
            return answer
        shape = answer_shape(self.task.output_format)
        if shape == "prose":  # a statement or a question is asked: rewriting it into prose is no format fault
            self.not_planted(f"the task asks for prose ({self.task.output_format}); there is no other format to break")
            return answer
        value_part, rest = _split_answer(answer)
        try:
            value = json.loads(value_part)
        except ValueError:
            value = value_part
        if shape in ("list", "mapping", "object") or isinstance(value, (list, dict)):
            if isinstance(value, dict):
                items = [f"{k} is {v}" for k, v in value.items()]
            elif isinstance(value, list):
                items = value
            else:
                items = [value]
            new = ("Well, after looking into it, here is the story in words rather than a list: it comes down to "
                   + _prose_items(items) + ", more or less.")
            produced = "prose"
        else:
            new = ("| # | field | value | comment |\n|---|---|---|---|\n"
                   f"| 1 | answer | {value_part} | see below |\n| 2 | format | table | — |")
            produced = "markdown table"
        self.planted(fenv.next_index(), required_format=self.task.output_format, required_shape=shape,
                     produced=produced)
        return "\n\n".join(p for p in (new, rest.strip()) if p)


class RoleViolation(Planter):
    """Record one tool call under a domain agent whose group does not include the tool (e.g. ``iot_agent``
    calling a ``wo_`` tool)."""

    name = "role_violation"

    def __init__(self, rng, task):
        super().__init__(rng, task)
        self.target = rng.choice([0, 1])
        self.seen = 0

    def _intruder(self, tool: str) -> tuple[str, str]:
        group = _group(tool, self.task.tool_groups)
        others = sorted(d for d, groups in DOMAIN_GROUPS.items() if group not in groups)
        return group, f"{self.rng.choice(others)}_agent"

    def on_tool_call(self, fenv, name, args, agent_name):
        if self.label is None and _is_target(name):
            if self.seen == self.target:
                group, intruder = self._intruder(name)
                index = fenv.next_index()
                envelope = fenv.raw_call(name, args, intruder)
                self.planted(index, tool=name, tool_group=group, agent_name=intruder, original_agent_name=agent_name,
                             allowed_groups=sorted(DOMAIN_GROUPS[intruder.removesuffix("_agent")]))
                self.seen += 1
                return envelope
            self.seen += 1
        return fenv.raw_call(name, args, agent_name)

    def finish(self, fenv, answer):
        if self.label is None:
            reads = _successful_reads(fenv)
            if not reads:
                self.not_planted("the inner agent made no tool call that another agent could take over")
                return answer
            name, args, agent_name, _, _ = reads[-1]
            group, intruder = self._intruder(name)
            index = fenv.next_index()
            fenv.raw_call(name, copy.deepcopy(args), intruder)
            self.planted(index, tool=name, tool_group=group, agent_name=intruder, original_agent_name=agent_name,
                         allowed_groups=sorted(DOMAIN_GROUPS[intruder.removesuffix("_agent")]),
                         note="planted after the inner agent's last call")
        return answer


def _scalar_facts(result: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(result, dict):
        for k, v in result.items():
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v).strip():
                out.append((prefix + k, v))
            elif isinstance(v, dict) and not prefix:
                out.extend(_scalar_facts(v, f"{k}."))
    return out


class IgnoredSubagentInput(Planter):
    """A sub-agent reports a fact from its observations and asks for it in the answer; the final answer
    (unchanged) omits it."""

    name = "ignored_subagent_input"

    def finish(self, fenv, answer):
        if not isinstance(answer, str):
            self.not_planted("the inner agent returned no text answer")
            return answer
        reads = _successful_reads(fenv)
        candidates: list[tuple[str, str, str, Any]] = []
        for name, _args, agent_name, _, envelope in reversed(reads):
            domain = _domain_of(_group(name, self.task.tool_groups))
            sender = agent_name if agent_name and agent_name.endswith("_agent") else f"{domain}_agent"
            for field, value in _scalar_facts(envelope.get("result")):
                if field.split(".")[-1] in ("page", "page_size", "pages", "order") or field.endswith(("_ts", "_at", "as_of")):
                    continue
                if isinstance(value, str):
                    absent = not _mentions(answer, value)
                else:
                    absent = all(abs(float(value) - x) > 1e-9 for x in _numbers_in(answer))
                if absent and len(str(value)) <= 80:
                    candidates.append((sender, name, field, value))
            if candidates:
                break
        numeric = [c for c in candidates if not isinstance(c[3], str)]
        candidates = numeric or candidates
        if not candidates:
            self.not_planted("no observed fact is missing from the answer (or no tool was called)")
            return answer
        sender, tool, field, value = candidates[self.rng.randrange(len(candidates))]
        content = (f"Important for the final answer: {tool} reports {field} = {value}. Please state it in the "
                   f"answer and qualify the conclusion accordingly.")
        index = fenv.next_index()
        fenv.real.message(content, agent_name=sender)
        self.planted(index, agent_name=sender, tool=tool, field=field, value=value, message=content)
        return answer


class SkippedVerification(Planter):
    """Drop the inner agent's verification phase: from a thought starting with ``Verification:`` until its
    next non-verification step, thoughts are not recorded and tool calls are answered from the run's own
    earlier identical calls without being recorded."""

    name = "skipped_verification"

    def __init__(self, rng, task):
        super().__init__(rng, task)
        self.skipping = False
        self.dropped: list[str] = []
        self.at: int | None = None

    def on_think(self, fenv, text, agent_name):
        if isinstance(text, str) and text.startswith(VERIFICATION_PREFIX):
            if not self.skipping and self.at is None:
                self.at = fenv.next_index()
            self.skipping = True
            self.dropped.append("thought")
            return False
        self.skipping = False
        return True

    def on_other_step(self, fenv):
        self.skipping = False

    def on_tool_call(self, fenv, name, args, agent_name):
        if self.skipping:
            cached = fenv.cache.get(_key(name, args))
            self.dropped.append(f"tool_call {name}")
            if cached is not None:
                return copy.deepcopy(cached)
            return {"ok": False, "error": {"code": "internal_error", "message": f"{name} was not re-read"}}
        return fenv.raw_call(name, args, agent_name)

    def finish(self, fenv, answer):
        if self.at is None:
            self.not_planted("the inner agent has no verification step (no 'Verification:' thought) to skip")
        else:
            self.planted(self.at, dropped_steps=len(self.dropped), dropped=self.dropped)
        return answer


PLANTERS: dict[str, type[Planter]] = {p.name: p for p in (
    SkippedVerification, IgnoredToolError, OverstatedCompletion, StepRepetition, WrongOutputFormat,
    InventedValue, RoleViolation, IgnoredSubagentInput,
)}
assert set(PLANTERS) == set(FAULTS)


# ------------------------------------------------------------------------------------------ the oracle


class _ClockContext:
    """Stands in for a ``ToolContext`` when the oracle renders a scenario: the clock as a tool reports it."""

    def __init__(self, clock: Mapping[str, Any]):
        self._clock = clock

    def now(self) -> Any:
        from datetime import datetime

        return datetime.fromisoformat(str(self._clock["now"]))

    def query(self, sql: str) -> Any:
        import pandas as pd

        if "telemetry_start" in sql and self._clock.get("telemetry_start"):
            return pd.DataFrame({"value": [self._clock["telemetry_start"]]})
        raise LookupError("only the clock is available to the oracle adapter")


class OracleAdapter(PrivilegedAgent):
    """Runs ``OracleAgent.solve`` through the run's environment, so its calls become trajectory steps.

    Each call is attributed to the domain agent of the tool's group (``iot_agent``, ...); the operator's
    replies come from ``env.ask_operator``. A structured answer is written as JSON text. Used until the
    oracle implements ``Agent`` itself.
    """

    orchestration = "oracle"

    def __init__(self, oracle: Any):
        self.oracle = oracle
        self.agent_id = str(getattr(oracle, "agent_id", "oracle"))
        self.model = None

    def run_with_scenario(self, task: Task, env: AgentEnvironment, scenario: Any) -> str:
        from aob_pipeline.lib.scenarios.model import Scenario

        if not isinstance(scenario, Scenario):
            scenario = Scenario.model_validate(scenario)

        reads: list[tuple[str, dict[str, Any], str, Any]] = []

        def call(_ctx: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
            domain = _domain_of(_group(name, task.tool_groups))
            out = env.call_tool(name, args, agent_name=f"{domain}_agent")
            if out.get("ok") and name not in STATE_CHANGING_TOOLS and name not in CATALOG_TOOLS:
                reads.append((name, copy.deepcopy(args), f"{domain}_agent", out.get("result")))
            return out

        ctx: Any = None
        if scenario.rendered_now is None:
            clock = env.call_tool("iot_current_time", {}, agent_name="iot_agent")
            if not clock.get("ok"):
                return "I could not read the monitoring system's clock to resolve the request's dates."
            ctx = _ClockContext(clock["result"])
        oracle = type(self.oracle)(call_tool=call) if _accepts_call_tool(self.oracle) else self.oracle
        result = oracle.solve(scenario, ctx, lambda question: env.ask_operator(question, agent_name="agent"))
        if result.failure and result.final_answer is None:
            return f"I could not solve this: {result.failure}"
        answer = result.final_answer
        text = answer if isinstance(answer, str) else json.dumps(answer, default=str)
        return _verify_last_read(env, reads, text)


def _verify_last_read(env: AgentEnvironment, reads: list[tuple[str, dict[str, Any], str, Any]], answer: str) -> str:
    """The oracle's verification, as a careful operator's: re-read the last data the answer rests on with the same
    arguments, announced by a ``Verification:`` thought (what ``skipped_verification`` removes), and say so in the
    answer only when the data changed between the two reads."""
    if not reads:
        return answer
    tool, args, agent_name, first = reads[-1]
    env.think(f"{VERIFICATION_PREFIX} re-reading {tool} with the same arguments to check the result.",
              agent_name=agent_name)
    again = env.call_tool(tool, args, agent_name=agent_name)
    if not again.get("ok"):
        env.think(f"{VERIFICATION_PREFIX} the re-read failed; the answer stands on the first read.", agent_name=agent_name)
        return answer
    same = json.dumps(again.get("result"), sort_keys=True, default=str) == json.dumps(first, sort_keys=True, default=str)
    env.think(f"{VERIFICATION_PREFIX} {'the data are unchanged; the result holds' if same else 'the data changed'}.",
              agent_name=agent_name)
    return answer if same else answer + "\n\nThe data changed while I read them; the result may be out of date."


def _accepts_call_tool(oracle: Any) -> bool:
    import inspect

    try:
        return "call_tool" in inspect.signature(type(oracle)).parameters
    except (TypeError, ValueError):
        return False


def as_agent(inner: Any) -> Agent:
    """``inner`` as an ``Agent``: itself, or the oracle through ``OracleAdapter``."""
    if isinstance(inner, Agent):
        return inner
    if hasattr(inner, "solve"):
        return OracleAdapter(inner)
    raise TypeError(f"cannot wrap {type(inner).__name__}: it is neither an Agent nor an oracle with solve()")


# ------------------------------------------------------------------------------------------ the wrapper


class FaultInjectingAgent(PrivilegedAgent):
    """Runs ``inner`` and plants ``fault`` into its run (see the module docstring).

    It is a ``PrivilegedAgent`` so that it can hand the scenario to a privileged inner agent (the oracle);
    a non-privileged inner agent never receives it. ``seed`` makes the choices (which call, which value)
    reproducible.
    """

    orchestration = "fault_injected"

    def __init__(self, inner: Any, fault: str, seed: int = 0):
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; faults are: {', '.join(FAULT_NAMES)}")
        self.inner = as_agent(inner)
        self.fault = fault
        self.seed = int(seed)
        self.agent_id = f"{self.inner.agent_id}+{fault}"
        self.model = getattr(self.inner, "model", None)

    def run(self, task: Task, env: AgentEnvironment) -> str:
        if isinstance(self.inner, PrivilegedAgent):
            raise TypeError(f"{self.agent_id}: the inner agent is privileged; the runner must call run_with_scenario")
        return self._run(task, env, None)

    def run_with_scenario(self, task: Task, env: AgentEnvironment, scenario: Any) -> str:
        return self._run(task, env, scenario)

    def _run(self, task: Task, env: AgentEnvironment, scenario: Any) -> str:
        planter = PLANTERS[self.fault](_rng(self.seed, self.fault, task, self.inner.agent_id), task)
        fenv = FaultEnvironment(env, planter)
        try:
            if isinstance(self.inner, PrivilegedAgent):
                answer = self.inner.run_with_scenario(task, fenv, scenario)  # type: ignore[arg-type]
            else:
                answer = self.inner.run(task, fenv)  # type: ignore[arg-type]
            answer = planter.finish(fenv, answer)
        except Exception as exc:
            planter.not_planted(f"the inner agent failed before the fault could be planted: {type(exc).__name__}")
            self._record(env, planter)
            raise
        except BaseException:
            planter.not_planted("the run hit a limit before the fault could be planted")
            self._record(env, planter)
            raise
        self._record(env, planter)
        return answer

    def _record(self, env: AgentEnvironment, planter: Planter) -> None:
        label = dict(planter.label or {"planted": False, "step": None, "details": {}, "reason": "not reached"})
        entry = {"fault": self.fault, **label, "inner_agent": self.inner.agent_id, "seed": self.seed,
                 "expected_finding": FAULTS[self.fault].expected_finding}
        existing = list(getattr(env, "labels", {}).get(PLANTED_FAULTS_LABEL, []))
        try:
            env.add_label(PLANTED_FAULTS_LABEL, existing + [entry])
        except BaseException:  # noqa: BLE001 - a closed environment cannot take the label; the run is over
            pass


def fault_wrapped_agents(base_agents: Iterable[Any], faults: Iterable[str] = FAULT_NAMES, seed: int = 0) -> list[Agent]:
    """Every base agent wrapped with every fault: the labelled field for validating judges and extractors."""
    out: list[Agent] = []
    for base in base_agents:
        for fault in faults:
            out.append(FaultInjectingAgent(base, fault, seed=seed))
    return out


def planted_faults(labels: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The planted-fault entries of a trajectory's labels (empty when none)."""
    return list((labels or {}).get(PLANTED_FAULTS_LABEL, []))


__all__ = [
    "FAULTS", "FAULT_NAMES", "PLANTED_FAULTS_LABEL", "FaultEnvironment", "FaultInjectingAgent", "FaultSpec",
    "OracleAdapter", "as_agent", "corrupt_arguments", "fault_wrapped_agents", "planted_faults",
]
