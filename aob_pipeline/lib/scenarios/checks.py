"""Checks over the scenario set: pure functions, wired as Dagster asset checks on the ``scenarios`` asset.

Each returns a ``CheckOutcome`` (passed, a one-line description, the problems found, metadata).

- ``check_ids_unique``: no two scenarios share an id.
- ``check_answer_specs``: every curated scenario names a declared answer kind that backs its format, with
  exactly the parameters its function takes (nested ``final`` specs of robustness answers included). That
  the oracle can extract every declared kind is the oracle's own contract, held by its tests
  (``tests/lib/agents/test_answer_kinds.py``), so this check reads only the declarations.
- ``check_answers_computed``: every curated scenario got an expected answer for the current world
  (from the materialised ``scenarios`` frame).
- ``check_gold_plan_tools``: every gold-plan tool exists, belongs to the step's agent, and its arguments
  validate against the tool's JSON schema (references to earlier results stand in as typed values).
- ``check_plan_dependencies``: step ids are unique; ``depends_on`` names earlier steps only; every reference
  (``${step...}``) in args, ``when`` and ``foreach`` names a step listed in ``depends_on``; ``${item}`` is used
  only in ``foreach`` steps; ``when`` conditions parse.
- ``check_twins``: ``twin_of`` names an existing public scenario that is not itself a twin, and the twin's
  wording differs from the original's.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aob_pipeline.lib.scenarios.model import ASK_OPERATOR, AnswerSpec, Scenario
from aob_pipeline.lib.scenarios.references import ITEM, REFERENCE, parse_condition, references_in


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    problems: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def _outcome(name: str, problems: list[str], ok: str, bad: str, **metadata: Any) -> CheckOutcome:
    passed = not problems
    return CheckOutcome(name, passed, ok if passed else bad.format(n=len(problems)), problems,
                        {"problems": len(problems), **metadata})


def check_ids_unique(scenarios: Sequence[Scenario]) -> CheckOutcome:
    counts = Counter(s.id for s in scenarios)
    problems = [f"{sid} is defined {n} times" for sid, n in sorted(counts.items()) if n > 1]
    return _outcome("scenario_ids_unique", problems, f"{len(counts)} scenario ids, all unique",
                    "{n} scenario id(s) defined more than once", scenarios=len(scenarios))


def _spec_problems(sid: str, spec: AnswerSpec, where: str) -> list[str]:
    from aob_pipeline.lib.scenarios.answers import ANSWER_KINDS

    fn = ANSWER_KINDS.get(spec.function)
    if fn is None:
        return [f"{sid}: {where}.function {spec.function!r} is not a registered answer function"]
    problems = []
    if spec.format not in fn.formats:
        problems.append(f"{sid}: {where}.format {spec.format!r} is not backed by {fn.name} ({', '.join(fn.formats)})")
    sig = fn.parameters()
    unknown = sorted(set(spec.params) - set(sig))
    missing = sorted(n for n, p in sig.items() if p.default is inspect.Parameter.empty and n not in spec.params)
    if unknown:
        problems.append(f"{sid}: {where}.params has unknown parameter(s) {', '.join(unknown)} for {fn.name}")
    if missing:
        problems.append(f"{sid}: {where}.params lacks required parameter(s) {', '.join(missing)} for {fn.name}")
    final = spec.params.get("final")
    if isinstance(final, dict):
        try:
            nested = AnswerSpec.model_validate(final)
        except ValueError as exc:
            problems.append(f"{sid}: {where}.params.final is not an answer spec: {exc}")
        else:
            problems.extend(_spec_problems(sid, nested, f"{where}.params.final"))
    return problems


def check_answer_specs(scenarios: Sequence[Scenario]) -> CheckOutcome:
    problems: list[str] = []
    curated = [s for s in scenarios if s.source == "curated"]
    for s in curated:
        if s.answer is None:
            problems.append(f"{s.id}: no answer spec")
            continue
        problems.extend(_spec_problems(s.id, s.answer, "answer"))
    return _outcome("every_scenario_has_an_answer", problems,
                    f"all {len(curated)} curated scenarios name a computable answer",
                    "{n} problem(s) with answer specs", curated=len(curated),
                    imported=len(scenarios) - len(curated))


def check_answers_computed(frame: Any) -> CheckOutcome:
    """Every curated row of the materialised ``scenarios`` frame has an expected answer."""
    curated = frame[frame["source"] == "curated"]
    missing = curated[~curated["answerable"].astype(bool)]
    problems = [f"{r.scenario_id}: {r.unanswerable_reason}" for r in missing.itertuples()]
    return _outcome("expected_answers_computed", problems,
                    f"expected answers computed for all {len(curated)} curated scenarios",
                    "{n} curated scenario(s) have no expected answer in this world",
                    curated=len(curated), answerable=int(curated["answerable"].sum()) if len(curated) else 0)


def _dummy(schema: dict[str, Any]) -> Any:
    """A value of the schema's type that passes its constraints, standing for a reference's runtime value."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        return float(low) + 1 if low is not None else 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "x" * max(1, int(schema.get("minLength", 1)))


def _has_reference(value: Any) -> bool:
    return bool(references_in(value))


def check_gold_plan_tools(scenarios: Sequence[Scenario],
                          get_tool: Callable[[str], Any] | None = None,
                          validate_arguments: Callable[[str, Any], list[str]] | None = None) -> CheckOutcome:
    """Every gold-plan tool exists, belongs to the step's agent and gets valid arguments."""
    if get_tool is None or validate_arguments is None:
        from aob_pipeline.lib.tools import registry

        get_tool = get_tool or registry.get_tool
        validate_arguments = validate_arguments or registry.validate_arguments
    problems: list[str] = []
    steps = 0
    for s in scenarios:
        for step in s.gold_plan:
            steps += 1
            where = f"{s.id} step {step.step}"
            if step.tool == ASK_OPERATOR:
                continue
            try:
                spec = get_tool(step.tool)
            except Exception as exc:  # noqa: BLE001 - ToolError('unknown_tool') and friends
                hint = getattr(exc, "hint", None)
                problems.append(f"{where}: unknown tool {step.tool!r}" + (f" ({hint[:160]})" if hint else ""))
                continue
            group = getattr(spec, "group", None)
            if group not in (step.agent, "knowledge"):
                problems.append(f"{where}: tool {step.tool} belongs to the {group} agent, not {step.agent}")
            props = (getattr(spec, "parameters", {}) or {}).get("properties", {})
            args = {}
            for name, value in step.args.items():
                args[name] = _dummy(props.get(name, {})) if _has_reference(value) else value
            for problem in validate_arguments(step.tool, args):
                problems.append(f"{where}: {step.tool}: {problem}")
    return _outcome("gold_plan_tools_valid", problems, f"all {steps} gold-plan steps call existing tools with valid arguments",
                    "{n} gold-plan step problem(s)", steps=steps)


def check_plan_dependencies(scenarios: Sequence[Scenario]) -> CheckOutcome:
    problems: list[str] = []
    for s in scenarios:
        seen: list[str] = []
        for step in s.gold_plan:
            where = f"{s.id} step {step.step}"
            if step.step in seen:
                problems.append(f"{where}: step id repeats")
            for dep in step.depends_on:
                if dep not in seen:
                    problems.append(f"{where}: depends_on {dep!r} is not an earlier step")
            refs = references_in([step.args, step.foreach, step.when])
            for ref_step, _ in refs:
                if ref_step == ITEM:
                    continue
                if ref_step not in step.depends_on:
                    problems.append(f"{where}: references ${{{ref_step}...}} but does not depend on it")
            if any(r == ITEM for r, _ in references_in(step.args)) and step.foreach is None:
                problems.append(f"{where}: uses ${{item}} without foreach")
            if any(r == ITEM for r, _ in references_in([step.foreach, step.when])):
                problems.append(f"{where}: ${{item}} is only valid inside args of a foreach step")
            if step.when is not None:
                try:
                    parse_condition(step.when)
                except ValueError as exc:
                    problems.append(f"{where}: {exc}")
            if isinstance(step.foreach, str) and not REFERENCE.fullmatch(step.foreach.strip()):
                problems.append(f"{where}: foreach must be a list or one reference, got {step.foreach!r}")
            seen.append(step.step)
    return _outcome("gold_plan_dependencies_valid", problems, "every gold-plan dependency points at an earlier step",
                    "{n} gold-plan dependency problem(s)")


def check_twins(scenarios: Sequence[Scenario]) -> CheckOutcome:
    by_id = {s.id: s for s in scenarios}
    problems: list[str] = []
    twins = [s for s in scenarios if s.twin_of]
    for s in twins:
        original = by_id.get(s.twin_of) if s.twin_of else None  # (every twin has it)
        if original is None:
            problems.append(f"{s.id}: twin_of {s.twin_of!r} names no scenario")
            continue
        if original.twin_of:
            problems.append(f"{s.id}: twin_of {s.twin_of!r} is itself a twin")
        if original.split != "public":
            problems.append(f"{s.id}: twin_of {s.twin_of!r} is not a public scenario")
        if " ".join(original.text.split()).lower() == " ".join(s.text.split()).lower():
            problems.append(f"{s.id}: the paraphrase repeats the wording of {s.twin_of}")
    return _outcome("twins_point_at_public_scenarios", problems, f"all {len(twins)} twins paraphrase existing public scenarios",
                    "{n} twin problem(s)", twins=len(twins))


def scenario_mix(scenarios: Sequence[Scenario]) -> dict[str, Any]:
    """Counts by type, split and robustness kind, and the hidden and robustness shares (for metadata)."""
    n = len(scenarios) or 1
    return {
        "total": len(scenarios),
        "by_type": dict(sorted(Counter(s.type for s in scenarios).items())),
        "by_split": dict(sorted(Counter(s.split for s in scenarios).items())),
        "by_robustness": dict(sorted(Counter(s.robustness for s in scenarios).items())),
        "hidden_share": round(sum(s.split == "hidden" for s in scenarios) / n, 3),
        "robustness_share": round(sum(s.robustness != "none" for s in scenarios) / n, 3),
        "twins": sum(1 for s in scenarios if s.twin_of),
        "deterministic": sum(1 for s in scenarios if s.deterministic),
    }


def run_static_checks(scenarios: Sequence[Scenario]) -> list[CheckOutcome]:
    """Every check that needs no warehouse."""
    return [
        check_ids_unique(scenarios),
        check_answer_specs(scenarios),
        check_gold_plan_tools(scenarios),
        check_plan_dependencies(scenarios),
        check_twins(scenarios),
    ]
