"""The scenario record: what an agent is asked, what a right answer is, and how the oracle gets there.

A scenario file (``assets_data/scenarios/*.yaml``) holds a list of these records (see ``loader.py`` for the
file layout, file-level defaults and how hidden twins inherit from the scenario they paraphrase).

Fields (every one is checked; a bad value fails with the file, the scenario id and the field):

- ``id``: unique, upper-case words joined by dashes, e.g. ``IOT-001``, ``MA-014``, ``PUB-101``.
- ``type``: IoT, FMSR, TSFM, WO or multi-agent.
- ``text``: the request as an operator would type it; may hold time placeholders (``templating.py``).
- ``category``, ``task_type``, ``output_format``: free labels for grouping results (e.g. "Data Query",
  "retrieval", "number").
- ``characteristic_form``: the expected behaviour in words, for judges that read rather than compute.
- ``sub_agents``: the domain agents the task needs (iot, fmsr, tsfm, wo).
- ``deterministic``: true when one exact answer exists (the oracle test covers every such scenario).
- ``answer``: how the expected answer is computed from the world: ``function`` (a name registered in
  ``answers.py``), ``params``, ``format`` (number, integer, id_set, label, list, text, json, clarification)
  and an optional ``tolerance`` (a number means an absolute tolerance; or ``{abs: .., rel: ..}``).
- ``gold_plan``: ordered steps ``{step, agent, tool, args, depends_on, when?, foreach?, all_pages?,
  expect_error?, purpose?}``; args may quote earlier results (``references.py``); ``when`` runs a step only
  if a condition on an earlier result holds; ``foreach`` runs it once per element of a list (``${item}``);
  ``all_pages`` fetches every page of a paged result; ``expect_error`` names the error code the step must
  meet (robustness cases). The pseudo-tool ``ask_operator`` (agent ``operator``) asks the operator
  ``args.question`` and gets ``operator_reply``.
- ``required_evidence``: what a right trajectory must touch, as ``kind:value`` strings
  (``asset:Chiller 6``, ``sensor:Supply Temperature``, ``window:{today-1d}/{today}``, ``failure_mode:FM-CH-03``).
- ``split``: public (agent builders see everything) or hidden (only aggregate feedback).
- ``robustness``: none, missing_sensor, conflicting_logs or vague_request. Robustness scenarios answer in
  the ``clarification`` format: what a right answer must do, and the final answer after the operator's reply.
- ``operator_reply``: the operator's answer to a clarifying question (robustness scenarios).
- ``twin_of``: for a hidden paraphrase, the id of the public scenario it paraphrases.
- ``source``: curated (ours, with a computed answer) or imported (public AssetOpsBench). An imported scenario
  whose answer the public data determines carries an ``answer`` and a ``gold_plan`` from
  ``assets_data/assetopsbench/ground_truth.yaml`` (keyed by upstream id); one whose answer cannot be computed
  has no ``answer`` and ``unanswerable_reason`` says why (judged against ``characteristic_form`` only).
- ``upstream_id``: an imported scenario's id as upstream writes it, as text (``101``, ``Q5``), so results can
  be compared with upstream's; ``type_source`` says where its type came from (record, file or id range).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aob_pipeline.lib.scenarios.templating import RenderClock, TemplateError, parse_now, render_value

ScenarioType = Literal["IoT", "FMSR", "TSFM", "WO", "multi-agent"]
SubAgent = Literal["iot", "fmsr", "tsfm", "wo"]
StepAgent = Literal["iot", "fmsr", "tsfm", "wo", "operator"]
AnswerFormat = Literal["number", "integer", "id_set", "label", "list", "text", "json", "clarification"]
Split = Literal["public", "hidden"]
Robustness = Literal["none", "missing_sensor", "conflicting_logs", "vague_request"]
Source = Literal["curated", "imported"]
TypeSource = Literal["record", "file", "id range"]

ASK_OPERATOR = "ask_operator"
"""The pseudo-tool of a gold-plan step that asks the operator a clarifying question."""

SCENARIO_ID_PATTERN = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$"
STEP_ID_PATTERN = r"^[A-Za-z][\w-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tolerance(_Strict):
    """Allowed difference for numbers: ``abs`` (absolute) and/or ``rel`` (relative to the expected value)."""

    abs: float | None = Field(default=None, ge=0)
    rel: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"abs": float(value)}
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> Tolerance:
        if self.abs is None and self.rel is None:
            raise ValueError("give abs and/or rel")
        return self

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in (("abs", self.abs), ("rel", self.rel)) if v is not None}


class AnswerSpec(_Strict):
    """How the expected answer is computed: a named function of ``answers.py`` with its parameters."""

    function: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    format: AnswerFormat
    tolerance: Tolerance | None = None


class PlanStep(_Strict):
    """One gold-plan step: a tool call by a domain agent (or a question to the operator)."""

    step: str = Field(pattern=STEP_ID_PATTERN)
    agent: StepAgent
    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    when: str | None = None
    foreach: str | list[Any] | None = None
    all_pages: bool = False
    expect_error: str | None = None
    purpose: str | None = None

    @model_validator(mode="after")
    def _operator_steps(self) -> PlanStep:
        if (self.tool == ASK_OPERATOR) != (self.agent == "operator"):
            raise ValueError(f"the tool {ASK_OPERATOR!r} goes with agent 'operator' and only with it")
        if self.tool == ASK_OPERATOR and not isinstance(self.args.get("question"), str):
            raise ValueError(f"an {ASK_OPERATOR!r} step needs args.question (text)")
        return self


class Scenario(_Strict):
    """One evaluation scenario (see the module docstring for every field)."""

    id: str = Field(pattern=SCENARIO_ID_PATTERN)
    type: ScenarioType
    text: str = Field(min_length=1)
    category: str = Field(min_length=1)
    task_type: str = Field(min_length=1)
    output_format: str = Field(min_length=1)
    characteristic_form: str = Field(min_length=1)
    sub_agents: list[SubAgent] = Field(default_factory=list)
    deterministic: bool = True
    answer: AnswerSpec | None = None
    gold_plan: list[PlanStep] = Field(default_factory=list)
    required_evidence: list[str] = Field(default_factory=list)
    split: Split = "public"
    robustness: Robustness = "none"
    operator_reply: str | None = None
    twin_of: str | None = None
    source: Source = "curated"
    unanswerable_reason: str | None = None
    note: str | None = None
    upstream_id: str | None = None
    type_source: TypeSource | None = None
    rendered_now: str | None = Field(default=None, description="The world 'now' the placeholders were rendered at.")

    @field_validator("sub_agents")
    @classmethod
    def _unique_agents(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("sub-agents repeat")
        return value

    @field_validator("required_evidence")
    @classmethod
    def _evidence_kinds(cls, value: list[str]) -> list[str]:
        for item in value:
            if ":" not in item:
                raise ValueError(f"evidence {item!r} is not 'kind:value' (e.g. 'asset:Chiller 6')")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.source == "curated":
            if self.answer is None:
                raise ValueError("answer: a curated scenario needs an answer spec (function, params, format)")
            if not self.gold_plan:
                raise ValueError("gold_plan: a curated scenario needs at least one step")
            if not self.sub_agents:
                raise ValueError("sub_agents: a curated scenario names the agents it needs")
        elif self.answer is None and not self.unanswerable_reason:
            raise ValueError("unanswerable_reason: an imported scenario without an answer says why none is computed")
        elif self.answer is not None and not self.gold_plan:
            raise ValueError("gold_plan: an imported scenario with a computed answer needs a gold plan")
        if self.robustness != "none" and self.answer is not None and self.answer.format != "clarification":
            raise ValueError(f"answer.format: a {self.robustness} scenario answers in the 'clarification' format")
        asks = any(s.tool == ASK_OPERATOR for s in self.gold_plan)
        if asks and not self.operator_reply:
            raise ValueError("operator_reply: the gold plan asks the operator, so the scenario needs the reply")
        if self.operator_reply and not asks:
            raise ValueError("gold_plan: the scenario has an operator_reply but no 'ask_operator' step")
        if self.twin_of is not None:
            if self.twin_of == self.id:
                raise ValueError("twin_of: a scenario cannot be its own twin")
            if self.split != "hidden":
                raise ValueError("split: a twin (twin_of set) is a hidden paraphrase, so split must be 'hidden'")
        if self.type == "multi-agent" and self.source == "curated" and len(self.sub_agents) < 2:
            raise ValueError("sub_agents: a multi-agent scenario needs two or more agents")
        probe = RenderClock(datetime(2000, 1, 10), datetime(2000, 1, 1))
        for name in ("text", "characteristic_form", "operator_reply", "required_evidence"):
            try:
                render_value(getattr(self, name), probe)
            except TemplateError as exc:
                raise ValueError(f"{name}: {exc}") from None
        for i, step in enumerate(self.gold_plan):
            try:
                render_value(step.args, probe)
            except TemplateError as exc:
                raise ValueError(f"gold_plan[{i}].args: {exc}") from None
        if self.answer is not None:
            try:
                render_value(self.answer.params, probe)
            except TemplateError as exc:
                raise ValueError(f"answer.params: {exc}") from None
        step_agents = {s.agent for s in self.gold_plan} - {"operator"}
        missing = sorted(step_agents - set(self.sub_agents))
        if missing:
            raise ValueError(f"sub_agents: the gold plan uses agent(s) {', '.join(missing)} not listed in sub_agents")
        return self

    # ------------------------------------------------------------------------------------------------

    @property
    def answerable(self) -> bool:
        """Whether an expected answer can be computed at all (an imported scenario only with a ground-truth spec)."""
        return self.answer is not None

    def render(self, now: datetime | str, telemetry_start: datetime | str | None = None) -> Scenario:
        """A copy with every time placeholder rendered at the world's ``now`` (and its telemetry start, for
        ``{telemetry_start}``); rendering a rendered scenario at the same ``now`` returns it unchanged."""
        clock = RenderClock.of(now, telemetry_start)
        if self.rendered_now is not None:
            if parse_now(self.rendered_now) != clock.now:
                raise ValueError(f"scenario {self.id} was rendered at {self.rendered_now}, not at {clock.now.isoformat()}")
            return self
        data = self.model_dump(mode="python")
        for key in ("text", "characteristic_form", "operator_reply", "required_evidence", "gold_plan", "answer"):
            data[key] = render_value(data[key], clock)
        data["rendered_now"] = clock.now.strftime("%Y-%m-%dT%H:%M:%S")
        return Scenario.model_validate(data)

    def step(self, step_id: str) -> PlanStep:
        for s in self.gold_plan:
            if s.step == step_id:
                return s
        raise KeyError(f"scenario {self.id} has no gold-plan step {step_id!r}")

    def to_record(self) -> dict[str, Any]:
        """The YAML/JSON form with defaults left out (what a scenario file holds); used to save imports."""
        return {"id": self.id, "type": self.type,
                **self.model_dump(mode="json", exclude_none=True, exclude_defaults=True, exclude={"id", "type"})}
