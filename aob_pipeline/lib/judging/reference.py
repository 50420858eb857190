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

A scenario without an expected answer (imported, or not answerable in this world) cannot be checked for task
completion: the verdict is NULL with its reason (a run that did not complete is still false), the other five are
judged from the trace and whatever ground truth the scenario has, and the score counts the judged criteria
(``coverage``). A scenario with neither a gold plan nor required evidence leaves retrieval accuracy NULL, and
sequence correctness too unless a role violation or a repeated call already makes it false. No rule judge passes a
scenario it cannot check.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from typing import Any

from aob_pipeline.lib.judging.records import CRITERIA, REFERENCE_JUDGE, Judgement
from aob_pipeline.lib.scenarios.compare import compare_answers, mentions, numbers_close
from aob_pipeline.lib.trace import (
    ASSET_KEYS,
    CATALOG_TOOLS,
    EVIDENCE_KEYS,
    FAILURE_ACK,
    SENSOR_KEYS,
    AnswerClaims,
    EntityScope,
    JudgeScenario,
    NumberBook,
    NumberClaim,
    TraceFacts,
    answer_claims,
    is_reference,
    maybe_json,
    norm,
    parse_ts,
    parse_window,
    split_answer,
    truncated,
    walk,
    windows_match,
)
from aob_pipeline.lib.trace.answer import (
    BARE_ANSWER_WORDS,
    MAX_CLEAR_ANSWER_CHARS,
    Verdict,
    answer_form,
    form_problem,
    ignored_reports,
    is_garbage,
    is_number,
    scenario_entities,
    states_result,
)
from aob_pipeline.lib.trace.claims import UNIT_CONSTANTS, overstatements
from aob_pipeline.lib.trace.verification import verification_check
from aob_pipeline.lib.trajectories.schema import Trajectory


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
            criteria: dict[str, Any] = {c: verdicts[c][0] for c in CRITERIA}
            return Judgement(
                run_id=t.run_id, agent_id=t.agent_id, scenario_id=t.scenario_id, trial=t.trial,
                judge=self.name, judge_kind=self.kind,
                **criteria,
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


def without_reference(sc: JudgeScenario) -> str | None:
    """Why task completion cannot be checked on ``sc`` (it has no expected answer), or None."""
    if sc.answerable and sc.answer_format is not None:
        return None
    return (f"not judged: scenario {sc.scenario_id} has no reference answer to check the result against "
            f"({sc.unanswerable_reason or 'not answerable'})")


def without_plan(sc: JudgeScenario) -> str | None:
    """Why the data a run should read and the order of its steps cannot be checked on ``sc`` (it has neither a
    gold plan nor required evidence: an imported scenario judged from its characteristic form), or None."""
    if sc.gold_plan or sc.required_evidence:
        return None
    return (f"not judged: scenario {sc.scenario_id} has no gold plan or required evidence to check the run "
            "against")


def task_completion(t: Trajectory, sc: JudgeScenario, facts: TraceFacts) -> Verdict:
    if t.status != "completed":
        return False, _status_note(t) + ", so the task was not completed"
    unchecked = without_reference(sc)
    if unchecked:
        return None, unchecked
    answer = t.final_answer
    if answer is None or not answer.strip():
        return False, "the run gave no final answer"
    assert sc.answer_format is not None  # without_reference(sc) said it is there
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
    for step in sc.tool_steps:
        if kind == "window":
            target = parse_window(value)
            s, e = parse_ts(step.args.get("start")), parse_ts(step.args.get("end"))
            if target is not None and s is not None and e is not None and windows_match((s, e), target):
                return True
            continue
        for key in EVIDENCE_KEYS.get(kind, ()):
            arg = step.args.get(key)
            if isinstance(arg, str) and not is_reference(arg) and facts.same_entity(kind, arg, value):
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
    unplanned = without_plan(sc)
    if unplanned:
        return None, unplanned
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






























def result_verification(t: Trajectory, sc: JudgeScenario, facts: TraceFacts) -> Verdict:
    answer = t.final_answer
    if answer is None or not answer.strip():
        return False, "there is no final answer to verify"
    if truncated(answer):
        return False, "the answer was cut at the size limit"
    if not states_result(answer, sc, answer_claims(answer)):
        return False, "the answer gives no result to verify"
    problem = form_problem(sc, facts, answer)
    if problem:
        return False, problem
    _, why = answer_form(sc.answer_format, sc.expected_answer, answer, facts)
    check = verification_check(sc, facts, answer)
    if check.problem:
        return False, check.problem
    if check.how:
        return True, f"the answer has the right form ({why}) and the agent checked its result: {check.how}"
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
    problems.extend(facts.role_problems())
    for call in facts.repeated_calls():
        problems.append(f"step {call.index} repeats an identical {call.tool} call that had already succeeded")
    if problems:
        return False, "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
    unplanned = without_plan(sc)
    if unplanned:  # roles and repetition are checked above; the order needs a gold plan
        return None, unplanned
    n = sum(1 for s in sc.gold_plan if positions[s.step] is not None)
    return True, f"{n} gold step(s) performed in dependency order, each by the right agent, none repeated"


# -------------------------------------------------------------------------------------------- clarity
















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
    entities = [e for e in scenario_entities(sc) if e and mentions(answer, e)]
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
        if is_number(leaf):
            numbers.append(float(leaf))
        elif isinstance(leaf, str):
            texts.add(norm(leaf))
    for key, aliases in sc.answer_aliases.items():
        texts.add(norm(key))
        texts.update(norm(a) for a in aliases)
    return numbers, texts










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
    unsupported += overstatements(sc, facts, claims)
    stated = states_result(answer, sc, claims) or bool(claims.completion_claims)
    if stated:
        ignored = facts.ignored_errors()
        if ignored:
            c = ignored[0]
            unsupported.append(f"a result although {c.tool} (step {c.index}) failed with {c.error_code}, was never "
                               "recovered from and never acknowledged")
        elif sc.tool_steps and not facts.usable_calls and not claims.acknowledges_failure:
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
        if value is None:  # not judged: nothing to suggest
            continue
        failed = value if criterion == "hallucination" else not value
        if failed:
            out.append(_SUGGESTIONS[criterion].format(why=why.rstrip(".")))
    return out


__all__ = [
    "RuleJudge", "ReferenceJudge", "Verdict", "without_reference", "without_plan", "clarity_justification", "hallucination", "no_data_read",
    "result_verification", "retrieval_accuracy", "sequence_correctness", "suggestions_for", "task_completion",
    # re-exported from the trace layer for existing callers
    "MAX_CLEAR_ANSWER_CHARS", "answer_form", "is_garbage", "states_result",
]
