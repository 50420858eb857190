"""The LLM judge: a model — any model string — reads the scenario and the trajectory and gives the six verdicts.

``LLMJudge(model, client, samples=3)`` takes a model string (``anthropic/<model>``, ``openai/<model>`` for OpenAI or
any OpenAI-compatible server, or a bare Claude id; ``AOB_LLM_JUDGE_MODEL``), and optionally ``base_url`` /
``api_key_env`` (default ``AOB_LLM_JUDGE_BASE_URL``, then the SDK's variable), so the judge can sit on another
provider or server than the agents it judges. It builds our own rubric prompt — the six criteria defined as the
reference judge reads them, the scenario (request, characteristic form, output format, robustness kind,
the reference answer computed from the world, the gold plan as one valid way), a compact rendering of the
trajectory (every step on one line, long observations cut, the middle of a very long run elided) and the
final answer — and asks for a structured reply matching ``JUDGEMENT_SCHEMA`` (per criterion ``{verdict,
rationale}``, plus ``suggestions``): as a forced ``record_judgement`` tool call on Anthropic, as a JSON-schema
response format on OpenAI-compatible servers, else as parsed text with one re-ask (``structured_mode``; see
``lib/llm/structured``). Each sample's mode and parse status (``ok`` / ``reasked``) are stored in
``Judgement.samples``; a reply that never parsed is a ``judge_error`` naming the mode.

Several samples (``samples``, default 3, each with its own sample index in the cache key) are drawn with
``call_structured_samples``; each criterion is decided by majority vote (a tie counts against the agent:
a positive criterion false, hallucination true); the rationale shown is that of the first sample that
voted with the majority; every sample's verdicts and rationales are stored in ``Judgement.samples``.
Every call goes through the given ``LLMClient`` and so through its cache: a re-run costs nothing.

Self-judging: a trajectory whose ``model`` equals or contains the judge's model (or the other way round,
case-insensitively, for any of the models named in it) is **not judged** — across providers: the provider prefix
and any route before the last ``/`` are dropped and ``.``, ``_``, ``:`` read as ``-`` before comparing, so
``openai/anthropic/claude-sonnet-4.5`` through a proxy is the same model as ``anthropic/claude-sonnet-4-5``: the judgement is recorded with
``judge_error = "self-judging refused: ..."`` and no verdicts, so it is visible in the table and left out
of scores (a row, rather than silence, shows that the judge was asked and declined).

Errors: a reply still invalid after the re-asks (``StructuredOutputError``), a call that failed after its
retries (``LLMCallFailed``), no API key and no cached reply (``LLMUnavailable``) or any other exception
become the ``judge_error`` of that trajectory; nothing is raised to the caller.
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from aob_pipeline.lib.judging.records import (
    CRITERIA,
    CRITERION_DESCRIPTIONS,
    NEGATIVE_CRITERION,
    POSITIVE_CRITERIA,
    Judgement,
)
from aob_pipeline.lib.judging.scenario import JudgeScenario
from aob_pipeline.lib.llm import LLMClient, LLMError, StructuredOutputError, call_structured_samples, majority_vote
from aob_pipeline.lib.trajectories.schema import Trajectory

JUDGE_TOOL = "record_judgement"
MODEL_ENV = "AOB_LLM_JUDGE_MODEL"
BASE_URL_ENV = "AOB_LLM_JUDGE_BASE_URL"
DEFAULT_SAMPLES = 3
DEFAULT_TEMPERATURE = 0.3
"""Upstream judged at temperature 0.3; it is recorded in the cache key (sent only where the API accepts it)."""
SELF_JUDGING = "self-judging refused"

JUDGEMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{
            c: {
                "type": "object",
                "description": CRITERION_DESCRIPTIONS[c],
                "properties": {
                    "verdict": {"type": "boolean"},
                    "rationale": {"type": "string", "minLength": 1, "maxLength": 800,
                                  "description": "One or two sentences citing step numbers."},
                },
                "required": ["verdict", "rationale"],
                "additionalProperties": False,
            }
            for c in CRITERIA
        },
        "suggestions": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 400},
            "maxItems": 6,
            "description": "Concrete advice to the agent's builder, one per problem found (empty when none).",
        },
    },
    "required": [*CRITERIA, "suggestions"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = """You are an exacting evaluator of AI agents that operate industrial assets (chillers, air-handling \
units) through tools: IoT (sites, assets, sensors, sensor history), FMSR (failure modes and the sensors that reveal \
them), TSFM (forecasting, anomaly detection) and WO (work orders, events, alerts, failure codes, drafting work orders).

You receive a task, what a right answer looks like, a reference answer computed from the data, one valid plan, and \
the agent's full trajectory. Judge the trajectory on six criteria, each a boolean:

1. task_completion: the run completed and the final answer is right for the task (values within reasonable \
rounding of the reference, the right ids, the right decision). In a robustness case (missing sensor, conflicting \
logs, vague request) it is right to say what is missing, point out the conflict and resolve it from the data, or ask \
the operator a clarifying question, as the expected behaviour says.
2. retrieval_accuracy: the agent queried the right assets, sites, sensors, time windows, failure modes and codes, \
and no wrong ones.
3. result_verification: the answer has the form the task asks for, and where the task needs it (several steps, \
a computed or conditional result) the agent checked its result or intermediate results before answering and acted \
on conditions only after reading the data that decides them.
4. sequence_correctness: tools and sub-agents were used in an order that respects the dependencies (an input is \
obtained before it is used), each step by the agent whose role it is, without repeating completed steps.
5. clarity_justification: the answer states its result clearly and cites the evidence it rests on (the asset, \
sensor, period or figures), with no confusing formatting.
6. hallucination (true is BAD): the answer claims values, ids, dates, names or actions (e.g. "work order \
created", "verified", "all steps completed") that nothing in the trajectory supports, or reports success after \
tool errors it never recovered from, or without any successful tool call.

Judge only from the trajectory shown: a claim not backed by an observation, the operator's reply or the task text is \
unsupported. The reference plan is one valid way, not the only one. Record your judgement by calling the tool \
record_judgement exactly once; each rationale is one or two sentences that cite step numbers."""


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 30)] + f" …[{len(text) - limit + 30} more chars]"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def render_trajectory(t: Trajectory, *, max_chars: int = 24_000, max_observation_chars: int = 700,
                      max_text_chars: int = 600) -> str:
    """The trajectory as numbered lines for a prompt: every step on one line, long observations and texts
    cut, and when the whole is over ``max_chars`` the middle steps elided (the first and last kept)."""
    lines = []
    for s in t.steps:
        who = s.agent_name
        if s.kind == "tool_call":
            call = f"[{s.index}] {who} CALL {s.tool}({_clip(_compact(s.arguments), 300)})"
            if s.error is not None:
                err = s.error
                lines.append(f"{call} -> ERROR {err.get('code')}: {_clip(str(err.get('message', '')), 300)}"
                             + (f" (hint: {_clip(str(err['hint']), 200)})" if err.get("hint") else ""))
            else:
                lines.append(f"{call} -> {_clip(_compact(s.observation), max_observation_chars)}")
        elif s.kind == "final":
            lines.append(f"[{s.index}] {who} FINAL ANSWER (shown in full below)")
        else:
            label = {"thought": "THOUGHT", "message": "MESSAGE", "ask_operator": "ASKS OPERATOR",
                     "operator_reply": "OPERATOR REPLIES"}.get(s.kind, s.kind.upper())
            lines.append(f"[{s.index}] {who} {label}: {_clip((s.content or '').strip(), max_text_chars)}")
    total = sum(len(x) + 1 for x in lines)
    if total > max_chars and len(lines) > 2:
        head: list[str] = []
        tail: list[str] = []
        budget = max_chars - 80
        i, j = 0, len(lines) - 1
        while i <= j:
            if sum(len(x) + 1 for x in head) <= sum(len(x) + 1 for x in tail) * 0.67:
                if sum(len(x) + 1 for x in head) + len(lines[i]) + sum(len(x) + 1 for x in tail) > budget:
                    break
                head.append(lines[i])
                i += 1
            else:
                if sum(len(x) + 1 for x in head) + len(lines[j]) + sum(len(x) + 1 for x in tail) > budget:
                    break
                tail.insert(0, lines[j])
                j -= 1
        omitted = j - i + 1
        lines = [*head, f"... {omitted} step(s) omitted for length ...", *tail] if omitted > 0 else [*head, *tail]
    header = [f"Status: {t.status}" + (f" ({_clip(t.status_reason, 300)})" if t.status_reason else ""),
              f"Steps: {t.totals.steps or len(t.steps)}, tool calls: {t.totals.tool_calls}, "
              f"tool errors: {t.totals.tool_errors}"]
    if t.plan:
        header.append("Plan made before execution: " + _clip(_compact(t.plan), 2000))
    return "\n".join([*header, *lines])


def render_prompt(t: Trajectory, sc: JudgeScenario, *, include_expected_answer: bool = True,
                  max_trajectory_chars: int = 24_000, max_answer_chars: int = 4000) -> str:
    """The user message of the rubric prompt for trajectory ``t`` on scenario ``sc``."""
    parts = [
        "## Task given to the agent", sc.text,
        "## Expected behaviour (characteristic form)", sc.characteristic_form or "(not given)",
        "## Requested output format", sc.output_format or "(not given)",
        "## Scenario facts",
        f"type {sc.type}; category {sc.category}; domain agents needed: {', '.join(sc.sub_agents) or 'unspecified'}; "
        f"robustness case: {sc.robustness}"
        + (f"; the operator, if asked, replies: {sc.operator_reply!r}" if sc.operator_reply else ""),
    ]
    if include_expected_answer and sc.answerable:
        fmt = f" (format {sc.answer_format}" + (f", tolerance {_compact(sc.answer_tolerance)}" if sc.answer_tolerance else "") + ")"
        parts += ["## Reference answer computed from the data" + fmt, _clip(_compact(sc.expected_answer), 3000)]
        if sc.answer_aliases:
            parts += ["Names that stand for ids: " + _clip(_compact(sc.answer_aliases), 800)]
    if sc.gold_plan:
        plan_lines = []
        for step in sc.gold_plan:
            deps = f" after {', '.join(step.depends_on)}" if step.depends_on else ""
            cond = f" only if {step.when}" if step.when else ""
            err = f" (expected to fail with {step.expect_error})" if step.expect_error else ""
            plan_lines.append(f"- {step.step}: {step.agent} {step.tool}({_clip(_compact(step.args), 300)}){deps}{cond}{err}")
        parts += ["## One valid plan (reference)", "\n".join(plan_lines)]
    if sc.required_evidence:
        parts += ["## Data a right trajectory touches", ", ".join(sc.required_evidence)]
    parts += ["## Trajectory", render_trajectory(t, max_chars=max_trajectory_chars),
              "## Final answer", _clip(t.final_answer, max_answer_chars) if t.final_answer else "(none)",
              "Judge the six criteria now by calling record_judgement."]
    return "\n\n".join(parts)


def model_identity(model: str) -> str:
    """The model itself, whatever the route: provider prefix and any path before the last ``/`` dropped
    (``openai/meta-llama/Llama-3.3-70B`` -> ``llama-3-3-70b``), casefolded, ``.``/``_``/``:`` read as ``-``."""
    name = model.casefold().strip().rsplit("/", 1)[-1]
    for prefix in ("us.anthropic.", "eu.anthropic.", "anthropic."):  # Bedrock-style ids
        if name.startswith(prefix):
            name = name[len(prefix):]
    return re.sub(r"[._:\s]+", "-", name).strip("-")


def _models_in(text: str | None) -> list[str]:
    if not text:
        return []
    return [model_identity(m) for m in re.split(r"[\s,;+|]+", text) if m.strip() and model_identity(m)]


def is_self_judging(trajectory_model: str | None, judge_model: str) -> bool:
    """True when the trajectory's model equals or contains the judge's model, or the reverse (any of the
    models named in ``trajectory_model``, separated by spaces, commas, ``+`` or ``|``; case-insensitive; contained
    on ``-`` boundaries), whichever provider or route each went through (``model_identity``)."""
    judge = model_identity(judge_model)
    if not judge:
        return False
    return any(_same_model(judge, m) for m in _models_in(trajectory_model))


def _same_model(a: str, b: str) -> bool:
    """Equal, or one a dated / sized / tagged variant of the other (``claude-sonnet-4-5-20250929``,
    ``llama3-1-8b``): containment on ``-`` boundaries, so a short name like ``m`` does not match ``llama``."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return f"-{short}-" in f"-{long}-"


def _flatten(sample: Mapping[str, Any]) -> dict[str, bool]:
    return {c: bool(sample[c]["verdict"]) for c in CRITERIA}


class LLMJudge:
    """A model as a judge (see the module docstring). ``judge(trajectory, scenario) -> Judgement``."""

    def __init__(self, model: str, client: LLMClient, samples: int = DEFAULT_SAMPLES, *,
                 temperature: float | None = DEFAULT_TEMPERATURE, max_reasks: int = 2, max_tokens: int = 2048,
                 include_expected_answer: bool = True, max_trajectory_chars: int = 24_000,
                 base_url: str | None = None, api_key_env: str | None = None, structured_mode: str = "auto",
                 stream: bool = False):
        if not isinstance(model, str) or not model.strip():
            raise ValueError("LLMJudge: model must be a non-empty model name")
        from aob_pipeline.lib.llm.providers import check_base_url, parse_model
        from aob_pipeline.lib.llm.structured import resolve_mode

        parse_model(model)
        resolve_mode(model, structured_mode)
        self.base_url = check_base_url(base_url or os.environ.get(BASE_URL_ENV) or None, BASE_URL_ENV)
        self.api_key_env = api_key_env
        self.structured_mode = structured_mode
        self.stream = stream
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"LLMJudge: samples must be a positive integer, got {samples!r}")
        self.model = model.strip()
        self.name = self.model
        self.client = client
        self.samples = samples
        self.temperature = temperature
        self.max_reasks = max_reasks
        self.max_tokens = max_tokens
        self.include_expected_answer = include_expected_answer
        self.max_trajectory_chars = max_trajectory_chars

    def judge(self, trajectory: Trajectory, scenario: JudgeScenario | Mapping[str, Any] | None) -> Judgement:
        identity = {"agent_id": getattr(trajectory, "agent_id", None),
                    "scenario_id": getattr(trajectory, "scenario_id", None),
                    "trial": getattr(trajectory, "trial", None)}
        run_id = getattr(trajectory, "run_id", None) or "?"

        def failed(reason: str, **extra: Any) -> Judgement:
            j = Judgement.failed(run_id, self.name, reason, judge_kind="llm", **identity)
            return j.model_copy(update=extra) if extra else j

        if is_self_judging(getattr(trajectory, "model", None), self.model):
            return failed(f"{SELF_JUDGING}: the run was produced by {trajectory.model}, the judge is {self.model}")
        try:
            if scenario is None:
                return failed(f"scenario {identity['scenario_id']} is not in the scenarios table")
            sc = scenario if isinstance(scenario, JudgeScenario) else JudgeScenario.from_row(scenario)
            prompt = render_prompt(trajectory, sc, include_expected_answer=self.include_expected_answer,
                                   max_trajectory_chars=self.max_trajectory_chars)
            results = call_structured_samples(
                self.client, self.model, SYSTEM_PROMPT, prompt, JUDGEMENT_SCHEMA, JUDGE_TOOL, self.samples,
                tool_description="Record the six verdicts on the trajectory, each with its rationale, and suggestions.",
                max_reasks=self.max_reasks, max_tokens=self.max_tokens, temperature=self.temperature,
                metadata={"purpose": "judge", "run_id": run_id, "judge": self.name},
                mode=self.structured_mode, base_url=self.base_url, api_key_env=self.api_key_env, stream=self.stream,
            )
        except StructuredOutputError as exc:
            cost = sum(r.cost_usd for r in exc.responses)
            return failed(f"parse failed ({exc.mode} mode): the LLM reply was not a valid judgement after "
                          f"{exc.attempts} attempt(s): {exc.problems[-1] if exc.problems else exc}"[:1000],
                          tokens_in=sum(r.input_tokens for r in exc.responses),
                          tokens_out=sum(r.output_tokens for r in exc.responses), cost_usd=cost)
        except LLMError as exc:
            return failed(f"LLM call failed: {type(exc).__name__}: {exc}"[:1000])
        except Exception as exc:  # noqa: BLE001 - recorded as the judging error, never raised
            tail = traceback.format_exc(limit=2).strip().splitlines()[-1]
            return failed(f"exception while judging: {type(exc).__name__}: {exc} ({tail})"[:1000])
        return self._combine(trajectory, results, identity)

    def _combine(self, t: Trajectory, results: Sequence[Any], identity: Mapping[str, Any]) -> Judgement:
        values = [r.value for r in results]
        flat = [_flatten(v) for v in values]
        verdicts: dict[str, Any] = majority_vote(flat, POSITIVE_CRITERIA, tie=False)  # (keyword arguments below)
        verdicts.update(majority_vote(flat, [NEGATIVE_CRITERION], tie=True))
        rationales = {}
        for c in CRITERIA:
            agreeing = next((v for v, f in zip(values, flat) if f[c] == verdicts[c]), values[0])
            rationales[c] = str(agreeing[c]["rationale"]).strip()[:800]
        best = next((v for v, f in zip(values, flat) if f == verdicts), values[0])
        suggestions = list(dict.fromkeys(str(s).strip() for s in best.get("suggestions", []) if str(s).strip()))
        samples = [
            {"sample_index": r.sample_index, **_flatten(r.value),
             "rationales": {c: r.value[c]["rationale"] for c in CRITERIA},
             "suggestions": list(r.value.get("suggestions", [])), "reasks": r.reasks, "cached": r.cached,
             "structured_mode": r.mode, "parse_status": r.parse_status,
             **({"parse_notes": r.notes} if r.notes else {})}
            for r in results
        ]
        return Judgement(
            run_id=t.run_id, judge=self.name, judge_kind="llm", **identity,
            **verdicts, rationales=rationales, suggestions=suggestions, samples=samples,
            tokens_in=sum(r.input_tokens for r in results), tokens_out=sum(r.output_tokens for r in results),
            cost_usd=round(sum(r.cost_usd for r in results), 10),
        )


__all__ = ["JUDGEMENT_SCHEMA", "JUDGE_TOOL", "LLMJudge", "SELF_JUDGING", "SYSTEM_PROMPT", "is_self_judging",
           "model_identity",
           "render_prompt", "render_trajectory"]
