"""The reference judge: the six criteria decided by rules, from the scenario's ground truth and the trace.

Deterministic and offline. Inputs: a ``Trajectory`` and its scenario (a ``scenarios`` table row or a
``JudgeScenario``). Vocabulary: a *usable* call succeeded, met an informative error (``empty_window``,
``not_enough_data``: a valid read of "no data") or met the error the gold plan expects (robustness probes);
a *data* tool is any tool but the catalog look-ups (``trace.CATALOG_TOOLS``: which sites, assets, sensors,
failure modes, codes, models exist). The rules, criterion by criterion (each verdict comes with the rationale
that names what decided it):

**task_completion** — true when the run's status is ``completed`` and its final answer matches the expected
answer under the scenario's answer format (``compare_answers``: numbers within the tolerance, id sets with
aliases, labels, lists, JSON leaves, free text by required terms). Robustness (``clarification``) cases add
the behaviour the characteristic form asks for: ``ask_clarification`` needs an ``ask_operator`` step in the
run; ``state_missing`` needs the answer to say that something is missing (or a structured
``behaviour: state_missing``); whenever the scenario scripts an operator reply, the agent must have asked.

**retrieval_accuracy** — true when the agent made a usable call; every ``required_evidence`` item that the
gold plan itself names in a literal argument was touched by a usable call's arguments or a successful
result's top-level field (assets through aliases learnt from the results and the scenario, sensors ignoring
an asset-name prefix, windows within 15 minutes on each bound; codes, failure modes and rules anywhere in a
successful result); every literal asset and sensor argument of the gold plan's unconditional steps was
touched too; and no successful *data* call went to an asset, sensor or window outside the scenario's scope
(``trace.EntityScope``; a kind whose gold arguments quote earlier results is not judged). Evidence the gold
plan only looks up in results (e.g. a sensor named in a failure mode's sensor list) is noted in the rationale
when unseen but does not fail. A scenario that names no entity needs one successful call of a gold-plan tool.

**result_verification** — true when all of:
1. *a result in form*: the answer states a result (``states_result``; a refusal does not) and has the form the
   answer format needs (``answer_form``: a number for ``number``, no table around a single value, a list for
   ``id_set`` / ``list`` — JSON, bullets, or a sentence where the values make up at least 25 % of the words —
   a value for each expected part for ``json``, the behaviour and the final value after the operator's reply
   for ``clarification``), not cut at the size limit;
2. *conditions checked*: each gold step's ``when`` condition is evaluated on the agent's *own* observations of
   the steps it quotes; if it held, the agent must have gone on to the step's tool; if it did not, the agent
   must not have (no work order drafted when no anomaly was found); an agent that never read what the
   condition quotes could not have checked it;
3. *checked where the result needs it*: a **multi-step** result (a gold tool step depends on another step)
   or a **derived** one (a number of a ``number`` / ``integer`` / ``list`` / ``json`` answer that no tool
   returned as a value or list length: the agent computed it) needs at least one check in the run — a
   verification statement (a thought or message after the first successful data call saying it verified /
   checked / confirmed / cross-checked), an announced re-read (an identical call right after such a
   statement), a cross-check (a successful call re-reading an entity through another tool or arguments), a
   condition respected as in 2, or, for chains, every dependent call using a value read from its dependency's
   result or the operator's reply (with at least one such link). A value read straight off a tool needs none.

**sequence_correctness** — true when the run performed at least one gold tool step (an empty run has no
correct sequence), and: every gold step the agent performed came after each of its dependencies (a
dependency that is itself conditional may be absent; asking the operator is a dependency like any other),
each tool call was made by the agent whose role it is (a named domain sub-agent only calls its own group's
tools — the FMSR agent also reads the manual — and a supervisor / planner does not call domain tools itself
when sub-agents exist), and no call repeats an identical call (same tool and arguments) that had already
succeeded, except one re-read announced as a check. Sub-agent order in multi-agent runs follows from the
first two rules: tools map to their agents.

**clarity_justification** — true when the final answer exists, is readable (``is_garbage``: ≥ 95 % printable,
≥ 20 % letters or digits among non-blank characters, no character repeated 25 times in a row; not truncated;
at most ``MAX_CLEAR_ANSWER_CHARS`` characters), *states a result* (``states_result``), *leaves out nothing a
sub-agent reported for it* (the last report of each domain sub-agent that states values — numbers, ids,
names, dates, ``field = value`` — has at least one of them in the answer), and *cites its evidence*: a bare
answer in the requested format (a JSON value, or at most three words) is backed by the data the run read (a
usable call or an operator reply); a prose answer names an entity the scenario is about — asset, site,
sensor, failure mode, code, window date — or states values found in what the run observed.

**hallucination** (true is bad) — true when the final answer claims something nothing supports: a number
(other than 0, 1 and unit constants such as 0.25 h, 24 h, 60 min, 100 %) that no observation, simple
aggregate of an observed list, operator reply, the request or the expected answer gives at the precision
written (also as a percentage); an id, date or equipment name found in none of them; a work order created
with no successful ``wo_create_work_order``; "verified" with no check in the run; completion ("all steps
completed", "task complete") while a gold step the run should have performed is missing, a tool error is
unhandled or no call succeeded; a result stated, without acknowledging failure, when a tool error was never
recovered from (no later successful call of the same tool with at most one argument corrected) or when no
call was usable; or a thought or message that calls a failed tool call a success.

A scenario without an expected answer (imported, or not answerable in this world) cannot be judged by
rules: the judgement records a ``judge_error`` saying so (an LLM judge can still judge it).
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Mapping
from typing import Any

from aob_pipeline.lib.judge.records import CRITERIA, REFERENCE_JUDGE, Judgement
from aob_pipeline.lib.judge.scenario import JudgeScenario
from aob_pipeline.lib.judge.trace import (
    ASSET_KEYS,
    FAILURE_ACK,
    CATALOG_TOOLS,
    FAILURE_MODE_KEYS,
    GROUP_AGENT,
    SENSOR_KEYS,
    SITE_KEYS,
    AnswerClaims,
    Call,
    EntityScope,
    NumberBook,
    NumberClaim,
    TraceFacts,
    answer_claims,
    is_reference,
    maybe_json,
    parse_ts,
    norm,
    observed_numbers,
    role_of,
    split_answer,
    truncated,
    walk,
)
from aob_pipeline.lib.scenarios.compare import compare_answers, mentions, numbers_close
from aob_pipeline.lib.trajectories.schema import Trajectory

MAX_CLEAR_ANSWER_CHARS = 8000
"""An answer longer than this is a dump, not a statement (the runner's own limit is larger)."""

CONFLICT_WORDS = re.compile(r"conflict|inconsisten|discrepan|contradict|disagree|mismatch|do(?:es)? not agree",
                            re.IGNORECASE)
LEADING_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)

Verdict = tuple[bool, str]


class RuleJudge:
    """The frame every rule-based judge shares: ``judge(trajectory, scenario)`` turns bad input (no scenario, a
    scenario of another run, one the judge cannot judge, an exception) into a ``Judgement.failed`` with the
    reason, and otherwise assembles the six verdicts ``verdicts()`` decides, with rationales and suggestions.
    Subclasses set ``name`` and ``kind`` and implement ``verdicts``; ``cannot_judge`` and ``prepare`` are hooks."""

    name: str
    kind: str

    def judge(self, trajectory: Trajectory, scenario: JudgeScenario | Mapping[str, Any] | None) -> Judgement:
        """Six verdicts on ``trajectory``; never raises for bad input: it becomes the ``judge_error``."""
        identity = {"agent_id": getattr(trajectory, "agent_id", None),
                    "scenario_id": getattr(trajectory, "scenario_id", None),
                    "trial": getattr(trajectory, "trial", None)}
        run_id = getattr(trajectory, "run_id", None) or "?"

        def failed(reason: str) -> Judgement:
            return Judgement.failed(run_id, self.name, reason, judge_kind=self.kind, **identity)

        try:
            if scenario is None:
                return failed(f"scenario {identity['scenario_id']} is not in the scenarios table")
            sc = scenario if isinstance(scenario, JudgeScenario) else JudgeScenario.from_row(scenario)
            if sc.scenario_id != trajectory.scenario_id:
                return failed(f"scenario mismatch: the run is on {trajectory.scenario_id}, "
                              f"the scenario given is {sc.scenario_id}")
            problem = self.cannot_judge(sc)
            if problem:
                return failed(problem)
            sc = self.prepare(sc)
            facts = TraceFacts(trajectory, sc)
            verdicts = self.verdicts(trajectory, sc, facts, answer_claims(trajectory.final_answer))
            t = trajectory
            return Judgement(
                run_id=t.run_id, agent_id=t.agent_id, scenario_id=t.scenario_id, trial=t.trial,
                judge=self.name, judge_kind=self.kind,
                **{c: verdicts[c][0] for c in CRITERIA},
                rationales={c: verdicts[c][1] for c in CRITERIA},
                suggestions=suggestions_for(verdicts),
            )
        except Exception as exc:  # noqa: BLE001 - a judging failure is recorded, never a silent verdict
            tail = traceback.format_exc(limit=2).strip().splitlines()[-1]
            return failed(f"exception while judging: {type(exc).__name__}: {exc} ({tail})"[:1000])

    def cannot_judge(self, sc: JudgeScenario) -> str | None:
        """Why this judge cannot judge runs of ``sc`` (recorded as the judge error), or None."""
        return None

    def prepare(self, sc: JudgeScenario) -> JudgeScenario:
        """The scenario as the rules see it (the trace-only judge strips the ground truth here)."""
        return sc

    def verdicts(self, t: Trajectory, sc: JudgeScenario, facts: TraceFacts,
                 claims: AnswerClaims) -> dict[str, Verdict]:
        """``{criterion: (verdict, rationale)}`` for the six criteria."""
        raise TypeError(f"{type(self).__name__} does not define verdicts()")


class ReferenceJudge(RuleJudge):
    """Rule-based judge with the ground truth (see the module docstring for every rule)."""

    name = REFERENCE_JUDGE
    kind = "reference"

    def cannot_judge(self, sc: JudgeScenario) -> str | None:
        if not sc.answerable or sc.answer_format is None:
            return (f"the reference judge needs an expected answer; scenario {sc.scenario_id} has none "
                    f"({sc.unanswerable_reason or 'not answerable'})")
        return None

    def verdicts(self, t: Trajectory, sc: JudgeScenario, facts: TraceFacts,
                 claims: AnswerClaims) -> dict[str, Verdict]:
        return {
            "task_completion": task_completion(t, sc, facts),
            "retrieval_accuracy": retrieval_accuracy(t, sc, facts),
            "result_verification": result_verification(t, sc, facts),
            "sequence_correctness": sequence_correctness(t, sc, facts),
            "clarity_justification": clarity_justification(t, sc, facts, claims),
            "hallucination": hallucination(t, sc, facts, claims),
        }


# =========================================================================================== criteria


def _status_note(t: Trajectory) -> str:
    reason = (t.status_reason or "").strip().splitlines()
    return f"the run ended '{t.status}'" + (f" ({reason[0][:160]})" if reason else "")


def task_completion(t: Trajectory, sc: JudgeScenario, facts: TraceFacts) -> Verdict:
    if t.status != "completed":
        return False, _status_note(t) + ", so the task was not completed"
    answer = t.final_answer
    if answer is None or not answer.strip():
        return False, "the run gave no final answer"
    match = compare_answers(sc.expected_answer, answer, sc.answer_format, sc.answer_tolerance,
                            aliases=sc.answer_aliases)
    if not match:
        return False, f"the answer does not match the expected {sc.answer_format} answer: {match.reason}"[:400]
    if sc.answer_format == "clarification" and isinstance(sc.expected_answer, Mapping):
        behaviour = sc.expected_answer.get("behaviour")
        parsed = maybe_json(answer)
        structured = parsed.get("behaviour") if isinstance(parsed, Mapping) else None
        text = answer if not isinstance(parsed, Mapping) else " ".join(str(v) for k, v in parsed.items() if k != "final")
        if behaviour == "ask_clarification" and not facts.questions:
            return False, "the request is vague and calls for a clarifying question, but the agent asked none"
        if behaviour == "state_missing" and structured != "state_missing" and not FAILURE_ACK.search(text):
            return False, "the task asks for data that does not exist; the answer does not say that it is missing"
        if sc.operator_reply and not facts.questions:
            return False, "the operator holds information the task needs, but the agent never asked"
        return True, f"the answer shows the expected behaviour ({behaviour}) and mentions what it must"
    return True, f"the run completed and the answer matches the expected {sc.answer_format} answer"


# ----------------------------------------------------------------------------------------- retrieval


def _gold_literal_entities(sc: JudgeScenario) -> list[tuple[str, str]]:
    """Literal asset and sensor arguments of unconditional gold steps that expect no error."""
    out = []
    for step in sc.tool_steps:
        if step.when or step.expect_error:
            continue
        for kind, keys in (("asset", ASSET_KEYS), ("sensor", SENSOR_KEYS)):
            for key in keys:
                value = step.args.get(key)
                if isinstance(value, str) and value and not is_reference(value):
                    out.append((kind, value))
    return out


def _gold_names(kind: str, value: str, sc: JudgeScenario, facts: TraceFacts) -> bool:
    """Whether some gold-plan step names evidence ``kind:value`` in a literal argument (then the agent must
    query it too; evidence the plan only looks up in results is checked more loosely)."""
    from aob_pipeline.lib.judge.trace import EVIDENCE_KEYS, parse_window, windows_match

    for step in sc.tool_steps:
        if kind == "window":
            target = parse_window(value)
            s, e = parse_ts(step.args.get("start")), parse_ts(step.args.get("end"))
            if target is not None and s is not None and e is not None and windows_match((s, e), target):
                return True
            continue
        for key in EVIDENCE_KEYS.get(kind, ()):
            arg = step.args.get(key)
            if isinstance(arg, str) and not is_reference(arg) and facts._same(kind, arg, value):
                return True
    return False


def no_data_read(facts: TraceFacts) -> Verdict | None:
    """The failing verdict of a run that read no data (every call failed, or none was made); None otherwise."""
    if facts.usable_calls:
        return None
    if facts.calls:
        return False, f"all {len(facts.calls)} tool call(s) failed: the agent read no data"
    return False, "the agent made no tool call: it read no data"


def retrieval_accuracy(t: Trajectory, sc: JudgeScenario, facts: TraceFacts) -> Verdict:
    usable = facts.usable_calls
    nothing_read = no_data_read(facts)
    if nothing_read:
        return nothing_read
    hard = [(k, v) for k, v in sc.evidence if _gold_names(k, v, sc, facts)]
    soft = [(k, v) for k, v in sc.evidence if (k, v) not in hard]
    required = list(dict.fromkeys([*hard, *_gold_literal_entities(sc)]))
    missing = [f"{k}:{v}" for k, v in required if not facts.touched(k, v, usable)]
    unseen = [f"{k}:{v}" for k, v in soft if not facts.touched(k, v, usable, anywhere=True)]
    wrong = facts.wrong_entities(EntityScope.of(sc), [c for c in facts.ok_calls if c.tool not in CATALOG_TOOLS])
    if not required:
        gold_tools = {s.tool for s in sc.tool_steps}
        if gold_tools and not any(c.ok and c.tool in gold_tools for c in facts.calls):
            return False, f"none of the tools the task needs ({', '.join(sorted(gold_tools))}) returned data"
    problems = []
    if missing:
        problems.append("did not query " + ", ".join(missing[:6]) + (" ..." if len(missing) > 6 else ""))
    if wrong:
        problems.append("read data of a wrong entity: " + ", ".join(wrong[:4]) + (" ..." if len(wrong) > 4 else ""))
    if problems:
        return False, "; ".join(problems)
    named = ", ".join(f"{k}:{v}" for k, v in required[:5]) or "the data the gold plan reads"
    note = f" (not seen, but not queried by the gold plan either: {', '.join(unseen[:3])})" if unseen else ""
    return True, f"queried {named} and nothing off-topic{note}"


# -------------------------------------------------------------------------------------- verification


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


TABLE_ROW = re.compile(r"(?m)^\s*\|.*\|\s*$")
TABLE_RULE = re.compile(r"(?m)^\s*\|?\s*:?-{3,}")
LIST_LINE = re.compile(r"(?m)^\s*(?:[-*•]|\d{1,3}[.)])\s+\S")
MIN_ITEM_DENSITY = 0.25
"""In a list or structured answer written as prose, the listed values (and key words) must make up at
least this share of the words: below it the answer talks around its values instead of listing them."""


def _is_table(text: str) -> bool:
    return len(TABLE_ROW.findall(text)) >= 2 and bool(TABLE_RULE.search(text))


def _item_density(text: str, items: list[Any]) -> float:
    """Share of the text's words that belong to mentions of ``items`` (values, key words)."""
    words = re.findall(r"[\w.%/-]+", text)
    if not words:
        return 0.0
    covered = 0
    for item in dict.fromkeys(str(i) for i in items if i is not None and str(i).strip()):
        if mentions(text, item):
            covered += len(re.findall(r"[\w.%/-]+", item))
    return min(1.0, covered / len(words))


def _prose_form(text: str, items: list[Any], what: str) -> Verdict:
    """A list / structure written in text: JSON-free but listed (bullets, lines) or dense enough."""
    if LIST_LINE.search(text) or _is_table(text):
        return True, f"{what} as a list"
    density = _item_density(text, items)
    if density >= MIN_ITEM_DENSITY:
        return True, f"{what} in a sentence"
    return False, (f"{what} is asked, but the answer talks around its values (they make up {density:.0%} of its "
                   f"words, under {MIN_ITEM_DENSITY:.0%})")


def answer_form(fmt: str | None, expected: Any, answer: Any, facts: TraceFacts | None = None) -> Verdict:
    """Whether ``answer`` has the form of answer format ``fmt`` (not whether it is right). Returns (ok, why).

    The value part of the answer is judged (``split_answer``: a leading JSON value, comments after a blank
    line aside). Scalars (``number``, ``integer``, ``label``) must not come wrapped in a table; lists and
    structures (``id_set``, ``list``, ``json``) are JSON, a bulleted list or a table, or a sentence in which the
    values make up at least ``MIN_ITEM_DENSITY`` of the words.
    """
    if isinstance(answer, str):
        parsed, _ = split_answer(answer)
        text = answer.strip() if isinstance(parsed, str) else json.dumps(parsed, default=str)
    else:
        parsed, text = answer, json.dumps(answer, default=str)
    if parsed is None or (isinstance(parsed, str) and not parsed.strip()):
        return False, "the answer is empty"
    structured = not isinstance(parsed, str)
    claims = None if structured else answer_claims(text)
    if fmt in ("number", "integer", "label") and not structured and _is_table(text):
        return False, f"a single {fmt} is asked, but the answer is a table"
    if fmt in ("number", "integer"):
        if isinstance(parsed, Mapping) and len(parsed) == 1:
            parsed = next(iter(parsed.values()))
        if _is_number(parsed):
            ok = fmt == "number" or float(parsed).is_integer()
            return ok, "a number" if ok else f"{parsed} is not an integer"
        if isinstance(parsed, str):
            nums = [n for n in claims.numbers if fmt == "number" or float(n.value).is_integer()]
            return (True, "states a number") if nums else (False, f"states no {'integer' if fmt == 'integer' else 'number'}")
        return False, f"expected a {fmt}, got a {type(parsed).__name__}"
    if fmt == "id_set":
        if isinstance(parsed, (list, tuple)):
            return True, "a list of ids"
        if isinstance(parsed, Mapping):
            return (any(isinstance(v, list) for v in parsed.values()), "an object holding a list of ids")
        items = list(expected or [])
        if not items:
            return (bool(re.search(r"\b(none|no|zero|nothing|0)\b", text, re.IGNORECASE)),
                    "an empty set must be stated as none")
        if not (any(mentions(text, x) for x in items) or claims.ids or claims.names):
            return False, "names no id"
        if len(items) == 1:
            return True, "names the id"
        return _prose_form(text, items, "a set of ids")
    if fmt == "label":
        if isinstance(parsed, (list, tuple)) and len(parsed) != 1:
            return False, f"expected one label, got a list of {len(parsed)}"
        return True, "a label"
    if fmt == "list":
        if isinstance(parsed, (list, tuple)):
            return True, "a list"
        items = list(expected or []) if isinstance(expected, (list, tuple)) else []
        if items and all(_is_number(x) for x in items):
            n = len(claims.numbers) if claims else 0
            return (n >= len(items), f"gives {n} of the {len(items)} values a list needs")
        return _prose_form(text, items, "a list") if items else (bool(text.strip()), "a list in text")
    if fmt == "json":
        if structured:
            leaves = [v for _, v in walk(parsed) if v is not None]
            return (bool(leaves) or parsed == [], "a structured answer" if leaves else "an empty structure")
        if isinstance(expected, Mapping):
            missing = []
            for key, value in expected.items():
                leaves = [v for _, v in walk(value)]
                words = [w for w in re.split(r"[_\W]+", str(key)) if len(w) > 2]
                said = any(v is not None and not isinstance(v, bool) and mentions(text, v) for v in leaves) or \
                    (words and all(mentions(text, w) for w in words)) or any(isinstance(v, bool) for v in leaves) and \
                    bool(re.search(r"\b(yes|no|true|false|not)\b", text, re.IGNORECASE))
                if not said:
                    missing.append(str(key))
            if missing:
                return False, f"gives nothing for {missing}"
            items = [v for _, v in walk(expected) if v is not None and not isinstance(v, bool)]
            items += [w for key in expected for w in re.split(r"[_\W]+", str(key)) if len(w) > 2]
            return _prose_form(text, items, "a structured answer")
        return (bool(text.strip()), "text")
    if fmt == "text":
        words = len(text.split())
        return (words >= 3, f"{words} word(s)")
    if fmt == "clarification":
        if not isinstance(expected, Mapping):
            return bool(text.strip()), "text"
        behaviour = expected.get("behaviour")
        is_map = isinstance(parsed, Mapping)
        said = " ".join(str(v) for k, v in parsed.items() if k != "final") if is_map else text
        shown = is_map and parsed.get("behaviour") == behaviour
        if not shown:
            if behaviour == "state_missing":
                shown = bool(FAILURE_ACK.search(said))
            elif behaviour == "ask_clarification":
                shown = bool(facts and facts.questions) or "?" in said
            elif behaviour == "note_conflict":
                shown = bool(CONFLICT_WORDS.search(said))
            else:
                shown = bool(said.strip())
        if not shown:
            return False, f"does not show the {behaviour} behaviour"
        if expected.get("final") is not None:
            final = parsed.get("final") if is_map else text
            if final is None:
                return False, "gives no final answer after the operator's reply"
            ok, why = answer_form(expected.get("final_format") or "json", expected["final"], final, facts)
            return ok, f"{behaviour}; final answer: {why}"
        return True, f"shows the {behaviour} behaviour"
    return (bool(text.strip()), "non-empty")


def _referenced_steps(condition: str) -> list[str]:
    from aob_pipeline.lib.scenarios.references import REFERENCE

    return [m.group("step") for m in REFERENCE.finditer(condition)]


def _check_conditions(sc: JudgeScenario, facts: TraceFacts) -> tuple[int, list[str]]:
    """(conditions checked and respected, problems) over the gold plan's ``when`` conditions."""
    from aob_pipeline.lib.scenarios.references import PlanReferenceError, evaluate_condition

    problems, respected = [], 0
    steps = {s.step: s for s in sc.gold_plan}
    for step in sc.gold_plan:
        if not step.when:
            continue
        outputs = {}
        for ref in _referenced_steps(step.when):
            if ref in steps:
                out = facts.output_of(steps[ref])
                if out is not None:
                    outputs[ref] = out
        acted = any(c.tool == step.tool for c in facts.calls) if not step.is_operator else bool(facts.questions)
        try:
            holds = evaluate_condition(step.when, outputs)
        except (PlanReferenceError, ValueError, TypeError):
            if not acted and any("error" in o for o in outputs.values()):
                respected += 1  # the data said "nothing there" (informative error): nothing to act on
                continue
            if acted:
                problems.append(f"called {step.tool} although it never obtained what decides whether to "
                                f"({step.when})")
            else:
                problems.append(f"never obtained what decides whether to call {step.tool} ({step.when})")
            continue
        if holds and not acted:
            problems.append(f"the condition {step.when} held on what it read, but it did not go on to {step.tool}")
        elif not holds and acted:
            problems.append(f"the condition {step.when} did not hold on what it read, yet it called {step.tool}")
        else:
            respected += 1
    return respected, problems


def _values_in(output: Mapping[str, Any]) -> tuple[set[str], NumberBook, str]:
    texts = {norm(v) for _, v in walk(output) if isinstance(v, str) and v}
    blob = norm(" ".join(str(v) for _, v in walk(output) if isinstance(v, str)))
    return texts, NumberBook(observed_numbers(output)), blob


def _uses_output(call: Call, output: Mapping[str, Any]) -> bool:
    """Whether a call's arguments carry a value read from ``output`` (a result or an operator reply)."""
    texts, numbers, blob = _values_in(output)
    for _, value in walk(call.args):
        if isinstance(value, str) and value.strip():
            n = norm(value)
            if n and (n in texts or (len(n) >= 3 and n in blob)):
                return True
        elif _is_number(value):
            text = repr(value) if isinstance(value, float) else str(value)
            if numbers.supports(NumberClaim(float(value), len(text.split(".", 1)[1]) if "." in text else 0, text)):
                return True
    return False


def _chain_links(sc: JudgeScenario, facts: TraceFacts) -> tuple[int, list[str]]:
    """(links checked, problems) over the gold dependencies the agent performed whose dependent step
    quotes its dependency (``${dep...}``) or follows an operator question."""
    steps = {s.step: s for s in sc.gold_plan}
    checked, problems = 0, []
    for step in sc.tool_steps:
        call = facts.gold_call(step)
        if call is None or not call.ok and not facts.expected_error(call):
            continue
        for dep_id in step.depends_on:
            dep = steps.get(dep_id)
            if dep is None:
                continue
            quotes = f"${{{dep_id}." in str(step.args) or f"${{{dep_id}}}" in str(step.args) or \
                (step.foreach is not None and f"${{{dep_id}." in str(step.foreach))
            if not (quotes or dep.is_operator):
                continue
            output = facts.output_of(dep)
            if output is None:
                continue  # performed without its dependency: a sequence problem, judged there
            if _uses_output(call, output):
                checked += 1
            else:
                problems.append(f"{step.tool} did not use what {dep.tool} returned")
    return checked, problems


DERIVED_FORMATS = ("number", "integer", "list", "json")


def derived_numbers(sc: JudgeScenario, facts: TraceFacts, answer: str) -> list[str]:
    """Numbers of a number / integer / list / json answer that no tool returned as a value: the agent computed
    them (0 and 1 aside)."""
    if sc.answer_format not in DERIVED_FORMATS:
        return []
    value, _ = split_answer(answer)
    claims = answer_claims(answer if isinstance(value, str) else json.dumps(value, default=str))
    return [n.text for n in claims.numbers
            if not (n.decimals == 0 and n.value in (0.0, 1.0)) and not facts.raw_numbers.supports(n)]


def _needs_check(sc: JudgeScenario, facts: TraceFacts, answer: str) -> str | None:
    """Why the result needs a check (None when it does not): a multi-step result (a gold tool step depends on
    another step) or a derived one (a number of a number / integer / list / json answer that no tool returned
    as a value: the agent computed it)."""
    if any(step.depends_on for step in sc.tool_steps):
        return "a multi-step result"
    computed = derived_numbers(sc, facts, answer)
    if computed:
        return f"a derived result ({', '.join(computed[:3])} computed, not read)"
    return None


def result_verification(t: Trajectory, sc: JudgeScenario, facts: TraceFacts) -> Verdict:
    answer = t.final_answer
    if answer is None or not answer.strip():
        return False, "there is no final answer to verify"
    if truncated(answer):
        return False, "the answer was cut at the size limit"
    if not states_result(answer, sc, answer_claims(answer)):
        return False, "the answer gives no result to verify"
    ok, why = answer_form(sc.answer_format, sc.expected_answer, answer, facts)
    if not ok:
        return False, f"the answer does not have the form the task needs ({sc.answer_format}): {why}"
    respected, problems = _check_conditions(sc, facts)
    if problems:
        return False, "; ".join(problems)
    need = _needs_check(sc, facts, answer)
    if need:
        statements, cross, rereads = facts.verification_statements(), facts.cross_checks(), facts.rereads()
        links, link_problems = _chain_links(sc, facts)
        if statements or cross or rereads or respected:
            how = (f"a verification statement at step {statements[0].index}" if statements
                   else f"a re-read ({rereads[0].tool} at step {rereads[0].index})" if rereads
                   else f"a cross-check ({cross[0].tool} at step {cross[0].index})" if cross
                   else f"it acted on {respected} condition(s) only as the data it read decided")
            return True, f"the answer has the right form ({why}) and the agent checked its result: {how}"
        if links and not link_problems:
            return True, (f"the answer has the right form ({why}) and each of {links} dependent step(s) used the "
                          "result it depends on")
        detail = "; ".join(link_problems) if link_problems else (
            "no dependent step used an intermediate result" if need == "a multi-step result"
            else "no re-read, cross-check or verification step")
        return False, f"{need} without any check: {detail}"
    return True, f"the answer has the form the task needs ({why})"


# ------------------------------------------------------------------------------------------- sequence


def sequence_correctness(t: Trajectory, sc: JudgeScenario, facts: TraceFacts) -> Verdict:
    positions = {s.step: facts.gold_position(s) for s in sc.gold_plan}
    steps = {s.step: s for s in sc.gold_plan}
    if sc.tool_steps and not any(positions[s.step] is not None for s in sc.tool_steps):
        return False, "none of the steps the task needs was performed (" + \
            ", ".join(dict.fromkeys(s.tool for s in sc.tool_steps)) + ")"
    problems = []
    for step in sc.gold_plan:
        pos = positions[step.step]
        if pos is None:
            continue
        for dep_id in step.depends_on:
            dep = steps.get(dep_id)
            if dep is None:
                continue
            dpos = positions.get(dep_id)
            if dpos is None:
                if dep.when:
                    continue
                what = "asking the operator" if dep.is_operator else f"calling {dep.tool}"
                problems.append(f"{step.tool} (step {pos}) ran without first {what}, which it depends on")
            elif dpos > pos:
                problems.append(f"{step.tool} (step {pos}) ran before {dep.tool} (step {dpos}), which it depends on")
    problems.extend(_role_problems(facts))
    for call in facts.repeated_calls():
        problems.append(f"step {call.index} repeats an identical {call.tool} call that had already succeeded")
    if problems:
        return False, "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
    n = sum(1 for s in sc.gold_plan if positions[s.step] is not None)
    return True, f"{n} gold step(s) performed in dependency order, each by the right agent, none repeated"


def _role_problems(facts: TraceFacts) -> list[str]:
    roles = {role_of(s.agent_name) for s in facts.steps}
    if not roles & {"iot", "fmsr", "tsfm", "wo"}:
        return []  # a single agent: no roles to respect
    out = []
    for call in facts.calls:
        role = role_of(call.agent_name)
        owner = GROUP_AGENT.get(call.group or "")
        if role == "coordinator" and owner:
            out.append(f"{call.agent_name} called {call.tool} itself instead of delegating to the {owner} agent")
        elif role in GROUP_AGENT.values() and owner and owner != role:
            out.append(f"{call.agent_name} called {call.tool}, a tool of the {owner} agent")
    return out


# -------------------------------------------------------------------------------------------- clarity


def is_garbage(text: str) -> str | None:
    """Why ``text`` is garbage, or None."""
    s = text.strip()
    nonspace = [c for c in s if not c.isspace()]
    if not nonspace:
        return "it is blank"
    printable = sum(1 for c in s if c.isprintable() or c in "\n\t\r") / len(s)
    if printable < 0.95:
        return f"only {printable:.0%} of it is printable"
    alnum = sum(1 for c in nonspace if c.isalnum()) / len(nonspace)
    if alnum < 0.2:
        return f"only {alnum:.0%} of it is letters or digits"
    if re.search(r"(.)\1{24,}", s):
        return "it repeats one character 25 times or more"
    return None


def _scenario_entities(sc: JudgeScenario) -> list[str]:
    names = [v for k, v in sc.evidence if k != "window"]
    names += [v.split("/")[0][:10] for k, v in sc.evidence if k == "window"]
    for step in sc.tool_steps:
        for key in (*ASSET_KEYS, *SENSOR_KEYS, *FAILURE_MODE_KEYS, *SITE_KEYS):
            value = step.args.get(key)
            if isinstance(value, str) and value and not is_reference(value):
                names.append(value)
    for key, aliases in sc.answer_aliases.items():
        if key in names or any(a in names for a in aliases):
            names.extend([key, *aliases])
    return list(dict.fromkeys(names))


def _new_tokens(claims: AnswerClaims, sc: JudgeScenario) -> list[str]:
    """Result tokens of the answer that the request itself does not contain."""
    task = answer_claims(sc.text)
    task_numbers = {n.value for n in task.numbers}
    task_norm = norm(sc.text)
    out = [n.text for n in claims.numbers if n.value not in task_numbers]
    out += [x for x in (*claims.ids, *claims.names) if norm(x) not in task_norm]
    out += [d for d in claims.dates if d not in sc.text]
    return out


BARE_ANSWER_WORDS = 3
"""An answer of at most this many words (or a JSON value) is a bare answer in the requested format."""
REPORT_PAIR = re.compile(r"\b[\w.]+\s*(?:=|:)\s*([^\s,;][^,;\n]*?)(?=[.,;\n]\s|[.,;]?$|\s+and\s)", re.MULTILINE)


def states_result(answer: str, sc: JudgeScenario, claims: AnswerClaims) -> bool:
    """Whether the answer states a result: a JSON value (an empty list counts: "none"), a bare short
    answer, a value / id / date / name the request does not already contain, a leading yes or no, a
    clarifying question or a statement of what is missing / conflicting in a robustness case, or words of
    its own — and in the last two cases it is not just an admission of failure."""
    value, _ = split_answer(answer)
    if not isinstance(value, str):
        return value == [] or (value is not None and value != {} and any(v is not None for _, v in walk(value)))
    if sc.robustness != "none":
        if "?" in answer or CONFLICT_WORDS.search(answer):
            return True
        if FAILURE_ACK.search(answer):  # says what is missing: it must name it, not just give up
            terms = _scenario_entities(sc)
            if isinstance(sc.expected_answer, Mapping):
                for term in sc.expected_answer.get("must_mention") or []:
                    terms.extend(term if isinstance(term, list) else [term])
            if any(mentions(answer, t) for t in terms if t):
                return True
    if _new_tokens(claims, sc) or LEADING_YES_NO.match(answer):
        return True
    task_words = set(re.findall(r"[a-z]{4,}", sc.text.casefold()))
    new_words = [w for w in re.findall(r"[a-z]{4,}", answer.casefold()) if w not in task_words]
    bare = len(answer.split()) <= BARE_ANSWER_WORDS
    return (bare or bool(new_words)) and not FAILURE_ACK.search(answer)


def _report_values(text: str) -> list[str]:
    """The values a sub-agent's report states: numbers, ids, dates, equipment names and ``field = value`` /
    ``field: value`` pairs."""
    claims = answer_claims(text)
    values = [n.text for n in claims.numbers] + claims.ids + claims.dates + claims.names
    values += [m.group(1).strip().strip("'\"") for m in REPORT_PAIR.finditer(text)]
    return [v for v in dict.fromkeys(values) if v and len(v) <= 80]


def ignored_reports(facts: TraceFacts, answer: str) -> list[str]:
    """Domain sub-agents whose last report (a message) states values of which the final answer uses none."""
    last: dict[str, str] = {}
    for step in facts.steps:
        if step.kind == "message" and step.content and role_of(step.agent_name) in ("iot", "fmsr", "tsfm", "wo"):
            last[step.agent_name] = step.content
    answer_numbers = answer_claims(answer).numbers
    out = []
    for agent, report in last.items():
        values = _report_values(report)
        if not values:
            continue
        used = False
        for v in values:
            number = re.fullmatch(r"-?\d+(?:\.\d+)?", v.replace(",", ""))
            if number and any(numbers_close(float(v.replace(",", "")), n.value, {"rel": 1e-3, "abs": 1e-6})
                              for n in answer_numbers):
                used = True
            elif not number and mentions(answer, v):
                used = True
            if used:
                break
        if not used:
            out.append(f"{agent} ({', '.join(values[:3])})")
    return out


def clarity_justification(t: Trajectory, sc: JudgeScenario, facts: TraceFacts, claims: AnswerClaims) -> Verdict:
    answer = t.final_answer
    if answer is None or not answer.strip():
        return False, "there is no final answer"
    if truncated(answer) or len(answer) > MAX_CLEAR_ANSWER_CHARS:
        return False, f"the answer is a dump of {len(answer)} characters, not a statement"
    value, rest = split_answer(answer)
    is_json = not isinstance(value, str)
    garbage = is_garbage(rest) if is_json and rest else (None if is_json else is_garbage(answer))
    if garbage:
        return False, f"the answer is not readable: {garbage}"
    if not states_result(answer, sc, claims):
        return False, "the answer states no result: no value, id, date or name beyond the request's own words"
    ignored = ignored_reports(facts, answer)
    if ignored:
        return False, "the answer leaves out what a sub-agent reported for it: " + "; ".join(ignored[:3])
    gathered = bool(facts.usable_calls) or bool(facts.replies)
    bare = (is_json and not rest) or (not is_json and len(answer.split()) <= BARE_ANSWER_WORDS)
    if bare or is_json:
        if gathered:
            return True, "a direct answer in the requested format, backed by the data the run read"
        return False, "a bare answer with nothing behind it: the run read no data"
    entities = [e for e in _scenario_entities(sc) if e and mentions(answer, e)]
    traced = [n.text for n in claims.numbers if facts.numbers.supports(n)]
    traced += [x for x in (*claims.ids, *claims.names) if facts.supports_text(x)]
    traced += [d for d in claims.dates if d in facts.observed_dates]
    traced += [p.strip() for p in re.split(r"[.;\n]", answer) if len(norm(p)) >= 8 and facts.supports_text(p)]
    traced += [p.strip() for p in re.split(r"[.;,:\n]|\band also\b|\band\b", answer)
               if 3 <= len(norm(p)) <= 60 and norm(p) in facts.observed_norms]
    if entities and gathered:
        return True, f"states its result and names what it rests on ({', '.join(entities[:3])})"
    if traced:
        return True, f"states its result with figures read from the tools ({', '.join(map(str, traced[:3]))})"
    if entities:
        return False, "names the entities of the request but the run read no data to cite"
    return False, "states a result but cites none of the evidence it rests on (no entity, no observed figure)"


# -------------------------------------------------------------------------------------- hallucination


def _expected_support(sc: JudgeScenario) -> tuple[list[float], set[str]]:
    numbers, texts = [], set()
    for _, leaf in walk(sc.expected_answer):
        if _is_number(leaf):
            numbers.append(float(leaf))
        elif isinstance(leaf, str):
            texts.add(norm(leaf))
    for key, aliases in sc.answer_aliases.items():
        texts.add(norm(key))
        texts.update(norm(a) for a in aliases)
    return numbers, texts


UNIT_CONSTANTS = frozenset({0.25, 0.5, 15.0, 24.0, 60.0, 96.0, 100.0, 365.0, 1000.0, 3600.0})
"""Unit and cadence constants (a 15-minute reading is 0.25 h, 96 a day; 60 minutes, 24 hours, 365 days,
percent, kilo, seconds per hour): an agent converting units writes them without having read them."""
SUCCESS_WORDS = re.compile(r"\b(returned|retrieved|got|obtained|succeeded|successful\w*|worked|done|have (?:the|what)|"
                           r"moving on|as expected|fine)\b", re.IGNORECASE)


def _missing_steps(sc: JudgeScenario, facts: TraceFacts) -> list[str]:
    """Tools of gold steps the run should have performed and did not: unconditional steps that expect no
    error, and conditional ones whose condition held on what the run read."""
    from aob_pipeline.lib.scenarios.references import PlanReferenceError, evaluate_condition

    steps = {s.step: s for s in sc.gold_plan}
    missing = []
    for step in sc.tool_steps:
        if step.expect_error or facts.gold_position(step) is not None:
            continue
        if step.when:
            outputs = {r: o for r in _referenced_steps(step.when) if r in steps
                       for o in [facts.output_of(steps[r])] if o is not None}
            try:
                if not evaluate_condition(step.when, outputs):
                    continue
            except (PlanReferenceError, ValueError, TypeError):
                continue
        missing.append(step.tool)
    return missing


def unsupported_actions(claims: AnswerClaims, facts: TraceFacts) -> list[str]:
    """Claims of acts the run does not hold: a work order created with no successful wo_create_work_order,
    "verified" with no check, and a failed call described as a success."""
    out = []
    if claims.creates_work_order and not any(c.ok and c.tool == "wo_create_work_order" for c in facts.calls):
        out.append("a work order created, but no wo_create_work_order call succeeded")
    if claims.verification_claims and not (facts.verification_statements() or facts.cross_checks()):
        out.append(f"'{claims.verification_claims[0]}', but the run holds no check")
    for call, step in _success_claimed_after_errors(facts):
        out.append(f"(step {step.index}) that {call.tool} worked, although it failed with {call.error_code}")
    return out


def _success_claimed_after_errors(facts: TraceFacts) -> list[tuple[Call, Any]]:
    """Failed calls (not informative, not expected) that the next thought or message of the same agent,
    before any other call, describes as having worked."""
    out = []
    for call in facts.calls:
        if facts.usable(call):
            continue
        for step in facts.steps[call.index + 1:]:
            if step.kind == "tool_call":
                break
            if step.kind in ("thought", "message") and step.agent_name == call.agent_name and step.content:
                if SUCCESS_WORDS.search(step.content) and not FAILURE_ACK.search(step.content):
                    out.append((call, step))
                break
    return out


def hallucination(t: Trajectory, sc: JudgeScenario, facts: TraceFacts, claims: AnswerClaims) -> Verdict:
    answer = t.final_answer
    if answer is None or not answer.strip():
        return False, "no final answer, so no claim"
    expected_numbers, expected_texts = _expected_support(sc)
    task = answer_claims(sc.text)
    task_book = NumberBook([n.value for n in task.numbers])
    task_norm = norm(sc.text)
    tol = sc.answer_tolerance

    def number_ok(n: NumberClaim) -> bool:
        if n.value in UNIT_CONSTANTS or (n.decimals == 0 and n.value in (0.0, 1.0)):
            return True
        return (facts.numbers.supports(n) or task_book.supports(n)
                or any(numbers_close(e, n.value, tol) for e in expected_numbers))

    def text_ok(token: str) -> bool:
        n = norm(token)
        return facts.supports_text(token) or n in task_norm or n in expected_texts

    unsupported = [f"the number {n.text}" for n in claims.numbers if not number_ok(n)]
    unsupported += [f"the id {x}" for x in claims.ids if not text_ok(x)]
    unsupported += [f"the name {x}" for x in claims.names if not text_ok(x)]
    unsupported += [f"the date {d}" for d in claims.dates
                    if d not in facts.observed_dates and d not in sc.text and norm(d) not in expected_texts]
    unsupported += unsupported_actions(claims, facts)
    unhandled = facts.unhandled_errors()
    if claims.completion_claims:
        missing = _missing_steps(sc, facts)
        if unhandled or missing or not facts.ok_calls:
            why = (f"{unhandled[0].tool} failed ({unhandled[0].error_code})" if unhandled
                   else f"{missing[0]} was never called" if missing else "no tool call succeeded")
            unsupported.append(f"'{claims.completion_claims[0]}', but {why}")
    stated = states_result(answer, sc, claims) or bool(claims.completion_claims)
    if stated and not claims.acknowledges_failure:
        if unhandled:
            c = unhandled[0]
            unsupported.append(f"a result although {c.tool} (step {c.index}) failed with {c.error_code} and was "
                               "never recovered from")
        elif sc.tool_steps and not facts.usable_calls:
            unsupported.append("a result although no tool call succeeded")
    if unsupported:
        return True, "the answer claims " + "; ".join(unsupported[:4]) + (" ..." if len(unsupported) > 4 else "")
    n = len(claims.numbers) + len(claims.ids) + len(claims.names) + len(claims.dates)
    return False, f"every checkable claim ({n}) is supported by the run, the request or the expected answer"


# ---------------------------------------------------------------------------------------- suggestions

_SUGGESTIONS = {
    "task_completion": "Answer exactly what was asked, in the requested format, and finish the run: {why}.",
    "retrieval_accuracy": "Query the assets, sensors and windows the request names, and only those: {why}.",
    "result_verification": "Give the result in the form the task needs and check multi-step results before "
                           "answering (act on conditions only after reading the data that decides them): {why}.",
    "sequence_correctness": "Run steps in dependency order, each by the agent whose role it is, without "
                            "repeating completed calls: {why}.",
    "clarity_justification": "State the result plainly and cite the asset, sensor, period or figures it rests "
                             "on: {why}.",
    "hallucination": "Report only values, ids and actions that a tool result or the operator gave, and say so "
                     "when a tool call failed instead of reporting success: {why}.",
}


def suggestions_for(verdicts: Mapping[str, Verdict]) -> list[str]:
    """One suggestion per failed criterion (a positive criterion false, or hallucination true)."""
    out = []
    for criterion in CRITERIA:
        value, why = verdicts[criterion]
        failed = value if criterion == "hallucination" else not value
        if failed:
            out.append(_SUGGESTIONS[criterion].format(why=why.rstrip(".")))
    return out


__all__ = [
    "MAX_CLEAR_ANSWER_CHARS", "ReferenceJudge", "answer_form", "clarity_justification", "hallucination",
    "ignored_reports", "is_garbage", "result_verification", "retrieval_accuracy", "sequence_correctness",
    "states_result", "suggestions_for", "task_completion",
]
