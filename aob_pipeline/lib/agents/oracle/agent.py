"""The oracle agent: follows a scenario's gold plan through the tools and answers from what it observed.

It proves every scenario solvable with the tools: the oracle sees only tool observations (and the
operator's replies), never the warehouse, ground truth or the expected answer, yet its final answer must
match the expected one. How each kind of answer is read off the observations is an *extractor*, one per
declared answer kind of ``aob_pipeline.lib.scenarios.answers`` (same name), written independently of its answer
function and kept in the module of the kind's domain (``oracle/{iot,fmsr,tsfm,wo,multi,robustness}.py``).

Running a plan:
- steps run in order (the scenario checks guarantee dependencies point at earlier steps); a step whose
  dependency did not produce a result is skipped, as is a step whose ``when`` condition is false;
- ``${step.result...}`` references are resolved against earlier results; ``foreach`` runs a step once per
  element (``${item}``); ``all_pages`` fetches pages 2..N and concatenates the list fields;
- ``ask_operator`` steps call ``ask_operator(question)`` and record the reply;
- a tool error is recorded as the step's ``error``; ``expect_error`` marks an error the plan expects
  (e.g. ``unknown_sensor`` in a missing-sensor case).

This is a plain class; the common agent interface wraps it elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aob_pipeline.lib.scenarios.model import ASK_OPERATOR, AnswerSpec, PlanStep, Scenario
from aob_pipeline.lib.scenarios.references import ITEM, PlanReferenceError, evaluate_condition, resolve

ORACLE_AGENT_ID = "oracle"


class ExtractionError(ValueError):
    """The observations do not hold what the answer needs (a tool failed or a step was skipped)."""


@dataclass(frozen=True)
class Observation:
    """One logical tool call of the plan (all pages merged) with its arguments and result or error."""

    step: str
    tool: str
    args: dict[str, Any]
    result: Any = None
    error: dict[str, Any] | None = None
    item: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return a == b


class ObservationBook:
    """What the oracle observed, for the extractors: results by tool and arguments, replies, questions."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.replies: list[str] = []
        self.questions: list[str] = []

    def add(self, obs: Observation) -> None:
        self.observations.append(obs)

    def matching(self, tool: str, ok: bool | None = True, **args: Any) -> list[Observation]:
        out = []
        for o in self.observations:
            if o.tool != tool or (ok is not None and o.ok != ok):
                continue
            if all(k in o.args and _same(o.args[k], v) for k, v in args.items() if v is not None):
                out.append(o)
        return out

    def results(self, tool: str, **args: Any) -> list[Any]:
        return [o.result for o in self.matching(tool, **args)]

    def one(self, tool: str, **args: Any) -> Any:
        """The last successful result of ``tool`` whose arguments match ``args`` (None-valued args ignored)."""
        found = self.matching(tool, **args)
        if not found:
            failed = self.matching(tool, ok=False, **args)
            why = f"; it failed: {failed[-1].error}" if failed else ""
            shown = {k: v for k, v in args.items() if v is not None}
            raise ExtractionError(f"no successful {tool} observation with {shown}{why}")
        return found[-1].result

    def errors(self, tool: str | None = None) -> list[Observation]:
        return [o for o in self.observations if not o.ok and (tool is None or o.tool == tool)]


@dataclass
class OracleResult:
    """The final answer and the trace: one dict per call ``{step, agent, tool, args, observation | error}``."""

    final_answer: Any
    steps: list[dict[str, Any]] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    failure: str | None = None


Extractor = Callable[[dict[str, Any], ObservationBook], Any]
EXTRACTORS: dict[str, Extractor] = {}


def extractor(name: str) -> Callable[[Extractor], Extractor]:
    """Register the oracle's extractor of the declared answer kind ``name`` (an undeclared name fails at import)."""
    from aob_pipeline.lib.scenarios.answers import ANSWER_KINDS

    if name not in ANSWER_KINDS:
        raise ValueError(f"extractor {name!r}: no answer kind of that name is declared")

    def wrap(func: Extractor) -> Extractor:
        if name in EXTRACTORS:
            raise ValueError(f"extractor {name!r} defined twice")
        EXTRACTORS[name] = func
        return func

    return wrap


# --------------------------------------------------------------------------------------- the agent


class OracleAgent:
    """Executes the gold plan through ``call_tool`` and derives the final answer from the observations."""

    agent_id = ORACLE_AGENT_ID

    def __init__(self, call_tool: Callable[[Any, str, dict[str, Any]], dict[str, Any]] | None = None):
        if call_tool is None:
            from aob_pipeline.lib.tools.registry import call_tool as registry_call

            call_tool = registry_call
        self._call = call_tool

    def solve(self, scenario: Scenario, ctx: Any, ask_operator: Callable[[str], str]) -> OracleResult:
        if scenario.answer is None:
            return OracleResult(None, failure="no answer is computed from the data for this scenario, so the oracle gives none")
        if scenario.rendered_now is None:
            scenario = scenario.render(ctx.now(), _telemetry_start(ctx))
        book = ObservationBook()
        trace: list[dict[str, Any]] = []
        outputs: dict[str, Any] = {}
        problems: list[str] = []
        for step in scenario.gold_plan:
            if any(d not in outputs or "result" not in outputs[d] and "reply" not in outputs[d] for d in step.depends_on):
                problems.append(f"step {step.step} skipped: a dependency produced no result")
                continue
            try:
                if step.when is not None and not evaluate_condition(step.when, outputs):
                    continue
                self._run_step(step, ctx, ask_operator, outputs, book, trace)
            except (PlanReferenceError, ValueError) as exc:
                problems.append(f"step {step.step}: {exc}")
        try:
            assert scenario.answer is not None  # checked above; rendering keeps it
            final = extract_answer(scenario.answer, book)
            failure = None
        except (ExtractionError, KeyError, IndexError, TypeError, ValueError) as exc:
            final, failure = None, "; ".join([*problems, f"extraction: {exc}"])
        return OracleResult(final, trace, list(book.questions), failure)

    # ----------------------------------------------------------------------------------------------

    def _run_step(self, step: PlanStep, ctx: Any, ask_operator: Callable[[str], str], outputs: dict[str, Any],
                  book: ObservationBook, trace: list[dict[str, Any]]) -> None:
        if step.tool == ASK_OPERATOR:
            question = str(resolve(step.args["question"], outputs))
            reply = ask_operator(question)
            book.questions.append(question)
            book.replies.append(reply)
            trace.append({"step": step.step, "agent": "operator", "tool": ASK_OPERATOR,
                          "args": {"question": question}, "observation": {"reply": reply}})
            outputs[step.step] = {"reply": reply}
            return
        if step.foreach is not None:
            items = resolve(step.foreach, outputs)
            if not isinstance(items, list):
                raise ValueError(f"foreach of step {step.step} is not a list: {items!r}")
            results = []
            for item in items:
                args = resolve(step.args, {**outputs, ITEM: item})
                envelope = self._call_all_pages(step, ctx, args, trace)
                book.add(Observation(step.step, step.tool, args, envelope.get("result"), envelope.get("error"), item))
                results.append(envelope.get("result"))
            outputs[step.step] = {"result": results, "items": items}
            return
        args = resolve(step.args, outputs)
        envelope = self._call_all_pages(step, ctx, args, trace)
        book.add(Observation(step.step, step.tool, args, envelope.get("result"), envelope.get("error")))
        if envelope.get("ok"):
            outputs[step.step] = {"result": envelope["result"]}
        else:
            outputs[step.step] = {"error": envelope["error"]}

    def _call_all_pages(self, step: PlanStep, ctx: Any, args: dict[str, Any],
                        trace: list[dict[str, Any]]) -> dict[str, Any]:
        envelope = self._record(step, ctx, args, trace)
        if not (step.all_pages and envelope.get("ok")):
            return envelope
        first = envelope["result"]
        merged = dict(first)
        pages = int(merged.get("pages") or 1)
        for page in range(int(args.get("page", 1)) + 1, pages + 1):
            nxt = self._record(step, ctx, {**args, "page": page}, trace)
            if not nxt.get("ok"):
                return nxt
            for key, value in nxt["result"].items():
                # the paged rows change from page to page; lists repeated on every page (e.g. anomaly windows) do not
                if isinstance(value, list) and isinstance(first.get(key), list) and value != first[key]:
                    merged[key] = merged[key] + value
        return {"ok": True, "result": merged}

    def _record(self, step: PlanStep, ctx: Any, args: dict[str, Any], trace: list[dict[str, Any]]) -> dict[str, Any]:
        envelope = self._call(ctx, step.tool, args)
        entry: dict[str, Any] = {"step": step.step, "agent": step.agent, "tool": step.tool, "args": args}
        if envelope.get("ok"):
            entry["observation"] = envelope["result"]
        else:
            entry["error"] = envelope.get("error")
            entry["expected_error"] = bool(step.expect_error and (envelope.get("error") or {}).get("code") == step.expect_error)
        trace.append(entry)
        return envelope


def _telemetry_start(ctx: Any) -> str | None:
    """The world's telemetry start as the agents see it (world_meta is agent-visible), for rendering."""
    try:
        rows = ctx.query("SELECT value FROM world_meta WHERE key = 'telemetry_start'")
    except Exception:  # noqa: BLE001 - a context without world_meta renders without that anchor
        return None
    return str(rows["value"].iloc[0]) if len(rows) else None


def extract_answer(spec: AnswerSpec | Mapping[str, Any], book: ObservationBook) -> Any:
    """The final answer for ``spec`` read off the observations by the extractor of its function."""
    if not isinstance(spec, AnswerSpec):
        spec = AnswerSpec.model_validate(spec)
    if spec.function not in EXTRACTORS:
        raise ExtractionError(f"the oracle has no extractor for answer function {spec.function!r}")
    value = EXTRACTORS[spec.function](dict(spec.params), book)
    if spec.format == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)
    return value
