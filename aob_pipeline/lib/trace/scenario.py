"""What a judge knows about a scenario: one ``scenarios`` table row, parsed.

``JudgeScenario.from_row(row)`` reads a row of the ``scenarios`` table (``materialize_scenarios``): the JSON
columns (expected answer, tolerance, aliases, gold plan) are parsed, list columns become lists.
``JudgeScenario.from_scenario(scenario, expected=...)`` builds one from a rendered ``Scenario`` record.
``scenario_index(frame)`` maps scenario ids to parsed scenarios; a malformed row raises ``ValueError``
naming the scenario and the column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aob_pipeline.lib.warehouse import frame_records

OPERATOR_TOOL = "ask_operator"
MULTI_AGENT_TYPE = "multi-agent"


@dataclass(frozen=True)
class GoldStep:
    """One gold-plan step as the judge uses it."""

    step: str
    agent: str
    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    when: str | None = None
    foreach: Any = None
    expect_error: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.tool == OPERATOR_TOOL


@dataclass(frozen=True)
class JudgeScenario:
    """A scenario as judges see it (ground truth included: judges are not agents)."""

    scenario_id: str
    type: str
    text: str
    category: str = ""
    task_type: str = ""
    output_format: str = ""
    characteristic_form: str = ""
    sub_agents: tuple[str, ...] = ()
    deterministic: bool = True
    split: str = "public"
    robustness: str = "none"
    answer_format: str | None = None
    answer_tolerance: Any = None
    expected_answer: Any = None
    answer_aliases: dict[str, list[str]] = field(default_factory=dict)
    gold_plan: tuple[GoldStep, ...] = ()
    required_evidence: tuple[str, ...] = ()
    operator_reply: str | None = None
    source: str = "curated"
    answerable: bool = False
    unanswerable_reason: str | None = None

    @property
    def multi_agent(self) -> bool:
        """A multi-agent scenario: typed so, or needing two or more domain agents."""
        return self.type == MULTI_AGENT_TYPE or len(self.sub_agents) >= 2

    @property
    def tool_steps(self) -> list[GoldStep]:
        """Gold steps that call a domain tool (not the operator)."""
        return [s for s in self.gold_plan if not s.is_operator]

    @property
    def evidence(self) -> list[tuple[str, str]]:
        """``required_evidence`` split into (kind, value) pairs."""
        out = []
        for item in self.required_evidence:
            kind, _, value = item.partition(":")
            out.append((kind.strip().lower(), value.strip()))
        return out

    # ------------------------------------------------------------------------------------------ builders

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JudgeScenario:
        """Parse a ``scenarios`` table row (dict or pandas Series)."""
        if isinstance(row, pd.Series):
            row = row.to_dict()
        sid = _text(row.get("scenario_id"))
        if not sid:
            raise ValueError("scenarios row: column 'scenario_id' is empty")
        where = f"scenarios row {sid}"
        try:
            plan = _json(row.get("gold_plan"), f"{where}: column 'gold_plan'") or []
            steps = tuple(gold_step(s, f"{where}: column 'gold_plan' step {i}") for i, s in enumerate(plan))
            aliases = _json(row.get("answer_aliases"), f"{where}: column 'answer_aliases'") or {}
            if not isinstance(aliases, Mapping):
                raise ValueError(f"{where}: column 'answer_aliases': expected a JSON object")
            answerable = bool(_value(row.get("answerable"), False))
            return cls(
                scenario_id=sid,
                type=_text(row.get("type")) or "",
                text=_text(row.get("text")) or "",
                category=_text(row.get("category")) or "",
                task_type=_text(row.get("task_type")) or "",
                output_format=_text(row.get("output_format")) or "",
                characteristic_form=_text(row.get("characteristic_form")) or "",
                sub_agents=tuple(_list(row.get("sub_agents"))),
                deterministic=bool(_value(row.get("deterministic"), True)),
                split=_text(row.get("split")) or "public",
                robustness=_text(row.get("robustness")) or "none",
                answer_format=_text(row.get("answer_format")),
                answer_tolerance=_json(row.get("answer_tolerance"), f"{where}: column 'answer_tolerance'"),
                expected_answer=_json(row.get("expected_answer"), f"{where}: column 'expected_answer'")
                if answerable else None,
                answer_aliases={str(k): [str(x) for x in (v or [])] for k, v in aliases.items()},
                gold_plan=steps,
                required_evidence=tuple(_list(row.get("required_evidence"))),
                operator_reply=_text(row.get("operator_reply")),
                source=_text(row.get("source")) or "curated",
                answerable=answerable,
                unanswerable_reason=_text(row.get("unanswerable_reason")),
            )
        except ValueError:
            raise
        except (TypeError, KeyError) as exc:
            raise ValueError(f"{where}: {exc}") from None

    @classmethod
    def from_scenario(cls, scenario: Any, expected: Any = None, aliases: Mapping[str, Sequence[str]] | None = None,
                      tolerance: Any = None) -> JudgeScenario:
        """From a rendered ``Scenario`` record and its expected answer (None: not answerable)."""
        answer = scenario.answer
        tol = tolerance
        if tol is None and answer is not None and answer.tolerance is not None:
            tol = answer.tolerance.as_dict()
        return cls(
            scenario_id=scenario.id, type=scenario.type, text=scenario.text, category=scenario.category,
            task_type=scenario.task_type, output_format=scenario.output_format,
            characteristic_form=scenario.characteristic_form, sub_agents=tuple(scenario.sub_agents),
            deterministic=scenario.deterministic, split=scenario.split, robustness=scenario.robustness,
            answer_format=answer.format if answer else None, answer_tolerance=tol, expected_answer=expected,
            answer_aliases={str(k): list(v) for k, v in (aliases or {}).items()},
            gold_plan=tuple(gold_step(s.model_dump(mode="json"), f"scenario {scenario.id} gold_plan")
                            for s in scenario.gold_plan),
            required_evidence=tuple(scenario.required_evidence), operator_reply=scenario.operator_reply,
            source=scenario.source, answerable=expected is not None,
            unanswerable_reason=None if expected is not None else (scenario.unanswerable_reason or "no expected answer"),
        )


def scenario_index(scenarios: pd.DataFrame | Sequence[JudgeScenario] | Mapping[str, JudgeScenario]) -> dict[str, JudgeScenario]:
    """Scenario id -> ``JudgeScenario`` from a ``scenarios`` frame (or a list / mapping of parsed ones)."""
    if isinstance(scenarios, Mapping):
        return dict(scenarios)
    if isinstance(scenarios, pd.DataFrame):
        if "scenario_id" not in scenarios.columns:
            raise ValueError("scenarios: missing column 'scenario_id'")
        out: dict[str, JudgeScenario] = {}
        for rec in frame_records(scenarios):
            sc = JudgeScenario.from_row(rec)
            if sc.scenario_id in out:
                raise ValueError(f"scenarios: scenario_id {sc.scenario_id} appears twice")
            out[sc.scenario_id] = sc
        return out
    return {s.scenario_id: s for s in scenarios}


# ---------------------------------------------------------------------------------------------- helpers


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _value(value: Any, default: Any) -> Any:
    return default if _is_missing(value) else value


def _text(value: Any) -> str | None:
    if _is_missing(value):
        return None
    return str(value)


def _list(value: Any) -> list[str]:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            return [str(x) for x in json.loads(value)]
        return [value] if value else []
    return [str(x) for x in value]


def _json(value: Any, where: str) -> Any:
    if _is_missing(value):
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not valid JSON ({exc.msg} at position {exc.pos})") from None
    return value


def gold_step(raw: Any, where: str) -> GoldStep:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(raw).__name__}")
    for key in ("step", "tool"):
        if not raw.get(key):
            raise ValueError(f"{where}: field '{key}' is missing")
    return GoldStep(
        step=str(raw["step"]),
        agent=str(raw.get("agent") or ""),
        tool=str(raw["tool"]),
        args=dict(raw.get("args") or {}),
        depends_on=tuple(str(d) for d in raw.get("depends_on") or ()),
        when=raw.get("when"),
        foreach=raw.get("foreach"),
        expect_error=raw.get("expect_error"),
    )
