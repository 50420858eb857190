"""Coherence of a judgement and a failure finding on the facts they share.

A judge criterion and a failure mode *share a fact* when both speak of it (``SHARED_FACTS``):

| fact | criterion (bad when) | failure mode |
|---|---|---|
| verification | result_verification false | no_or_incorrect_verification (MAST) |
| answer form | result_verification false | Extraneous or confusing output formatting |
| repetition | sequence_correctness false | step_repetition (MAST) |
| role | sequence_correctness false | disobey_role_specification (MAST) |
| ignored tool error | hallucination true | Lack of error handling for tool failure |
| overstated completion | hallucination true | Overstatement of task completion |

``contradictions(reading, verdicts, modes)`` lists where a judgement (``verdicts``: criterion -> bool) and a
finding (``modes``: the failure modes flagged) of the same run contradict each other on a shared fact:

- the mode is flagged but the criterion is good (a failure fed back to the participant that the score does not
  show);
- the criterion is bad *because of* the fact — the trace layer says the fact holds — but the mode is not flagged
  (a lost score the feedback does not explain). For result verification, a run whose answer states a result and
  is judged unverified must carry one of its two modes (verification or form).

Both the rule judges and the detectors read the fact from ``aob_pipeline.lib.trace``, so the list is empty by
construction; ``coherence_rows`` counts it over a field of runs (the ``judge_agreement`` table's
judge-versus-detector rows) and the test suite checks it on a real field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from aob_pipeline.lib.failures.findings import (
    DISOBEY_ROLE_SPECIFICATION,
    EXTRANEOUS_OUTPUT_FORMATTING,
    LACK_OF_TOOL_ERROR_HANDLING,
    NO_OR_INCORRECT_VERIFICATION,
    OVERSTATEMENT_OF_TASK_COMPLETION,
    STEP_REPETITION,
)
from aob_pipeline.lib.trace.answer import states_result
from aob_pipeline.lib.trace.claims import error_success_claims, overstatements
from aob_pipeline.lib.trace.reading import TraceReading


@dataclass(frozen=True)
class SharedFact:
    """A fact a criterion and a failure mode both speak of; ``bad`` is the criterion's value when it fails."""

    name: str
    criterion: str
    mode: str
    bad: bool = False
    on_stated_result: bool = False
    """The criterion speaks of the fact only when the answer states a result (the judge's hallucination reads an
    ignored error as "a result although a call failed"; with no result there is no claim to judge)."""


SHARED_FACTS: tuple[SharedFact, ...] = (
    SharedFact("verification", "result_verification", NO_OR_INCORRECT_VERIFICATION),
    SharedFact("answer_form", "result_verification", EXTRANEOUS_OUTPUT_FORMATTING),
    SharedFact("repetition", "sequence_correctness", STEP_REPETITION),
    SharedFact("role", "sequence_correctness", DISOBEY_ROLE_SPECIFICATION),
    SharedFact("ignored_tool_error", "hallucination", LACK_OF_TOOL_ERROR_HANDLING, bad=True, on_stated_result=True),
    SharedFact("overstated_completion", "hallucination", OVERSTATEMENT_OF_TASK_COMPLETION, bad=True),
)
SHARED_MODES = frozenset(f.mode for f in SHARED_FACTS)
"""Failure modes that share a fact with a criterion (the offline extractor keeps these first)."""


def _stated(reading: TraceReading) -> bool:
    answer = reading.trajectory.final_answer
    if not answer or not answer.strip() or reading.scenario is None:
        return False
    return states_result(answer, reading.scenario, reading.claims) or bool(reading.claims.completion_claims)


def fact_holds(fact: SharedFact, reading: TraceReading) -> bool:
    """Whether the trace layer says ``fact`` holds on the run *and* the criterion speaks of it (the judge reads it
    only on an answer that states a result for verification, ignored errors)."""
    facts = reading.facts
    if fact.name == "repetition":
        return bool(facts.repeated_calls())
    if fact.name == "role":
        return bool(facts.role_violations())
    if fact.name == "ignored_tool_error":
        return bool(error_success_claims(facts)) or (_stated(reading) and bool(facts.ignored_errors()))
    if fact.name == "overstated_completion":
        return bool(overstatements(reading.scenario, facts, reading.claims, error_claims=False))
    return False  # verification and form: decided together below


def contradictions(reading: TraceReading, verdicts: Mapping[str, Any], modes: Iterable[str]) -> list[tuple[str, str]]:
    """(fact, what contradicts) for each shared fact on which the judgement and the finding disagree."""
    flagged = set(modes)
    out: list[tuple[str, str]] = []
    for fact in SHARED_FACTS:
        value = verdicts.get(fact.criterion)
        if value is None or (isinstance(value, float) and pd.isna(value)):
            continue
        criterion_bad = bool(value) == fact.bad
        if fact.on_stated_result and not _stated(reading):
            continue
        if fact.mode in flagged and not criterion_bad:
            out.append((fact.name, f"{fact.mode} flagged, but {fact.criterion} is {value}"))
        elif criterion_bad and fact.mode not in flagged and fact_holds(fact, reading):
            out.append((fact.name, f"{fact.criterion} is {value} on this fact, but {fact.mode} is not flagged"))
    rv = verdicts.get("result_verification")
    if rv is False and _stated(reading) and not (flagged & {NO_OR_INCORRECT_VERIFICATION, EXTRANEOUS_OUTPUT_FORMATTING}):
        out.append(("verification", "result_verification is False on a stated result, but neither "
                                    f"{NO_OR_INCORRECT_VERIFICATION} nor '{EXTRANEOUS_OUTPUT_FORMATTING}' is flagged"))
    return out


def coherence_counts(items: Sequence[tuple[TraceReading, Mapping[str, Any], Iterable[str]]]) -> dict[str, Any]:
    """What ``coherence_rows`` reports, as counts that add up over agents: ``items`` (runs compared), ``n`` (runs
    with the three verdicts), and per fact ``contradictions``, ``bad`` (the judge's bad verdicts) and ``flag``
    (the detector's flags)."""
    counts = {f.name: 0 for f in SHARED_FACTS}
    bad = {f.name: 0 for f in SHARED_FACTS}
    flag = {f.name: 0 for f in SHARED_FACTS}
    n = 0
    for reading, verdicts, modes in items:
        if any(verdicts.get(c) is None for c in ("result_verification", "sequence_correctness", "hallucination")):
            continue
        n += 1
        modes = set(modes)
        for name, _ in contradictions(reading, verdicts, modes):
            counts[name] += 1
        for f in SHARED_FACTS:
            bad[f.name] += bool(verdicts[f.criterion]) == f.bad
            flag[f.name] += f.mode in modes
    return {"items": len(items), "n": n, "contradictions": counts, "bad": bad, "flag": flag}


def coherence_rows_from_counts(parts: Iterable[Mapping[str, Any]], judge: str, extractor: str) -> pd.DataFrame:
    """``coherence_rows`` over the sum of several ``coherence_counts`` (e.g. one per agent); empty when no run was
    compared."""
    parts = [p for p in parts if p]
    if not sum(int(p["items"]) for p in parts):
        return pd.DataFrame()
    n = sum(int(p["n"]) for p in parts)
    rows = []
    for f in SHARED_FACTS:
        found, bad, flag = (sum(int(p[key][f.name]) for p in parts) for key in ("contradictions", "bad", "flag"))
        rows.append({"judge_a": judge, "judge_b": extractor, "criterion": f"fact:{f.name}", "n": n,
                     "agreement": (1 - found / n) if n else None, "kappa": None, "degenerate": None,
                     "rate_a": bad / n if n else None, "rate_b": flag / n if n else None,
                     "contradictions": found})
    return pd.DataFrame(rows)


def coherence_rows(items: Sequence[tuple[TraceReading, Mapping[str, Any], Iterable[str]]],
                   judge: str, extractor: str) -> pd.DataFrame:
    """``judge_agreement``-shaped rows, one per shared fact (criterion ``fact:<name>``): n runs, agreement = share
    of runs without a contradiction on that fact, ``contradictions`` (runs), rate_a the judge's rate of a bad
    verdict on the fact's criterion, rate_b the detector's flag rate of the fact's mode. kappa is NULL: a criterion
    fails for more reasons than one mode names, so the two rates are not one rating of the same thing (the
    contradiction count is the comparison)."""
    return coherence_rows_from_counts([coherence_counts(items)], judge, extractor)


__all__ = ["SHARED_FACTS", "SHARED_MODES", "SharedFact", "coherence_counts", "coherence_rows",
           "coherence_rows_from_counts", "contradictions", "fact_holds", "judge_detector_counts", "judge_detector_rows",
           "modes_by_run", "update_judge_detector_counts"]


def modes_by_run(findings: pd.DataFrame, extractor: str) -> dict[str, set[str]]:
    """Run id -> failure modes ``extractor`` flagged (MAST slugs and additional titles), from a
    ``failure_findings`` frame."""
    rows = findings[(findings["extractor"] == extractor) & findings["flagged"].fillna(False).astype(bool)]
    out: dict[str, set[str]] = {str(r): set() for r in findings.loc[findings["extractor"] == extractor, "run_id"]}
    for run_id, slug, title in zip(rows["run_id"], rows["slug"], rows["title"]):
        out.setdefault(str(run_id), set()).add(str(slug) if isinstance(slug, str) and slug else str(title))
    return out


def judge_detector_counts(judgements: pd.DataFrame, findings: pd.DataFrame | None, trajectories: Sequence[Any],
                          scenarios: Mapping[str, Any], judge: str = "reference",
                          extractor: str = "offline") -> dict[str, dict[str, Any]]:
    """Agent id -> ``coherence_counts`` of ``judge`` against ``extractor`` over the agent's runs both judged and
    extracted (agents with no such run are left out)."""
    from aob_pipeline.lib.trace.reading import read_trace

    if findings is None or findings.empty or judgements is None or judgements.empty:
        return {}
    modes = modes_by_run(findings, extractor)
    mine = judgements[(judgements["judge"] == judge) & judgements["judge_error"].isna()]
    # run_id -> {column: value} (text column names)
    verdicts = cast("dict[str, dict[str, Any]]",
                    mine.drop_duplicates("run_id", keep="last").set_index("run_id").to_dict("index"))
    items: dict[str, list] = {}
    for t in trajectories:
        v, m = verdicts.get(t.run_id), modes.get(t.run_id)
        if v is None or m is None or t.scenario_id not in scenarios:
            continue
        items.setdefault(str(t.agent_id), []).append((read_trace(t, scenarios[t.scenario_id]), v, m))
    return {agent: coherence_counts(agent_items) for agent, agent_items in items.items()}


def judge_detector_rows(judgements: pd.DataFrame, findings: pd.DataFrame | None, trajectories: Sequence[Any],
                        scenarios: Mapping[str, Any], judge: str = "reference",
                        extractor: str = "offline") -> pd.DataFrame:
    """The ``judge_agreement`` rows comparing ``judge`` with ``extractor`` on every shared fact (``coherence_rows``)
    over the runs both judged and extracted; empty when there are no findings."""
    counts = judge_detector_counts(judgements, findings, trajectories, scenarios, judge, extractor)
    return coherence_rows_from_counts(counts.values(), judge, extractor)


JUDGE_DETECTOR_STEP = "judge_agreement"


def update_judge_detector_counts(con: Any, judge: str = "reference", extractor: str = "offline",
                                 ) -> tuple[pd.DataFrame, dict[str, tuple[str, Any]], list[str]]:
    """``judge_detector_rows`` over the warehouse, recomputing only the agents whose judge verdicts, findings,
    trajectories, the scenarios or this code changed since the counts were stored
    (``lib.warehouse.incremental``). Returns the rows, the state to store with them (``write_agent_state``
    under ``JUDGE_DETECTOR_STEP``) and the agents recomputed."""
    import sys

    import aob_pipeline.lib.trace as trace_package
    from aob_pipeline.lib.trace import scenario_index
    from aob_pipeline.lib.trajectories.store import read_trajectories_of
    from aob_pipeline.lib.warehouse import read_table
    from aob_pipeline.lib.warehouse.incremental import AgentRows, only_agents, scenarios_fingerprint, update_per_agent

    def compute(todo: list[str]) -> dict[str, Any]:
        with only_agents(con, todo) as where:
            judgements = read_table(con, "judgements", f"{where} AND judge = ?", [judge])
            findings = read_table(con, "failure_findings", f"{where} AND extractor = ?", [extractor])
            run_ids = [r for (r,) in con.execute(f"SELECT run_id FROM trajectories WHERE {where}").fetchall()]
        if judgements is None or findings is None or not run_ids:
            return {}
        scenarios = read_table(con, "scenarios")
        return judge_detector_counts(judgements, findings, read_trajectories_of(con, run_ids),
                                     scenario_index(scenarios) if scenarios is not None else {}, judge, extractor)

    quoted_judge, quoted_extractor = (name.replace("'", "''") for name in (judge, extractor))
    sources = [AgentRows("judgements", f"judge = '{quoted_judge}'"),
               AgentRows("failure_findings", f"extractor = '{quoted_extractor}'"),
               AgentRows("trajectories"), AgentRows("trajectory_steps", by_run=True)]
    counts, state, todo = update_per_agent(
        con, JUDGE_DETECTOR_STEP, sources, compute,
        context={"scenarios": scenarios_fingerprint(con), "judge": judge, "extractor": extractor},
        code=(trace_package, sys.modules[__name__]))
    rows = coherence_rows_from_counts([c for c in counts.values() if c], judge, extractor)
    return rows, state, todo
