"""The LLM failure extractor: a model reads a trajectory and reports its failures as structured output.

``LLMExtractor(client, model).extract(trajectory, scenario) -> Finding``, the same interface as the offline
extractor. ``model`` is any model string (``anthropic/<model>``, ``openai/<model>`` for OpenAI or any
OpenAI-compatible server, or a bare Claude id; default ``AOB_TRAJFM_MODEL``), ``base_url`` / ``api_key_env`` its
endpoint (default ``AOB_TRAJFM_BASE_URL``, then the SDK's variable). One call per trajectory through ``LLMClient``
(so through the request cache: a re-run replays the reply for $0 and without an API key), answering with an object
matching ``extraction_schema()`` — the input of a forced ``report_failures`` tool call on Anthropic, a JSON-schema
response format on OpenAI-compatible servers, else parsed text with one re-ask (``structured_mode``). How each
run's answer was obtained is kept in ``parse_log`` (run id -> mode, parse status, re-asks), and a reply that never
parsed is the finding's ``extraction_error`` naming the mode:

- ``summary`` (one sentence), ``task_completed`` (boolean);
- ``mast``: the 14 MAST flags, one boolean per slug (the taxonomy's definitions are in the prompt);
- ``mast_evidence``: for raised flags, the step and a verbatim quote (optional per flag);
- ``additional_modes``: at most two failure modes that the MAST flags do not capture, each with a short
  reusable title, a one-sentence description, the step and a verbatim quote — this is where new failure modes
  come from (they are clustered later and may become candidate modes of the taxonomy);
- ``attribution``: who failed (an agent name as it appears in the trace, ``tool`` or ``environment``) and the step.

Every quote is checked against the trace (``evidence.py``): an additional mode whose evidence is not in the
trace is rejected; a MAST detail whose evidence is not in the trace loses its detail (the flag, a judgement,
stays). Each rejection is counted in ``Finding.evidence_rejections``. A step index outside the run becomes
NULL. An LLM failure (no API key and no cached reply, retries spent, output still invalid after re-asks, cache
unreadable) never raises: the finding records it in ``extraction_error`` with unknown (NULL) flags.

The prompt is ours (``SYSTEM_PROMPT``): a failure analyst for industrial asset-operations agents, told to flag
only what the trace shows and to copy quotes exactly. Long observations are clipped to ``max_step_chars`` and
very long traces keep their first and last steps within ``max_trace_chars`` (a note says how many were left out).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from aob_pipeline.lib.failures.evidence import TraceEvidence, render_step
from aob_pipeline.lib.failures.findings import (
    ATTRIBUTION_ENVIRONMENT,
    ATTRIBUTION_TOOL,
    MAX_ADDITIONAL_MODES,
    AdditionalMode,
    Finding,
    ModeDetail,
    default_taxonomy,
    failed_extraction,
)
from aob_pipeline.lib.failures.taxonomy import MAST_SLUGS, Taxonomy
from aob_pipeline.lib.llm.cache import LLMCacheError
from aob_pipeline.lib.llm.client import LLMClient, LLMError
from aob_pipeline.lib.llm.structured import StructuredOutputError, call_structured_samples
from aob_pipeline.lib.scenarios.model import Scenario
from aob_pipeline.lib.trajectories.schema import Trajectory

log = logging.getLogger(__name__)

EXTRACTOR_MODEL_ENV = "AOB_TRAJFM_MODEL"
EXTRACTOR_BASE_URL_ENV = "AOB_TRAJFM_BASE_URL"
FALLBACK_MODEL_ENV = "AOB_CLAUDE_MODEL"
DEFAULT_EXTRACTOR_MODEL = "claude-sonnet-4-5"
TOOL_NAME = "report_failures"
LLM_DETECTOR = "llm"

DEFAULT_MAX_STEP_CHARS = 1_500
DEFAULT_MAX_TRACE_CHARS = 60_000
MAX_TITLE_CHARS = 80
MAX_EVIDENCE_CHARS = 400


def resolve_extractor_model(explicit: str | None = None) -> str:
    """``explicit``, else ``$AOB_TRAJFM_MODEL``, else ``$AOB_CLAUDE_MODEL``, else ``DEFAULT_EXTRACTOR_MODEL``."""
    from aob_pipeline.lib.llm.providers import parse_model

    if explicit is not None:
        if not isinstance(explicit, str) or not explicit.strip():
            raise ValueError(f"LLMExtractor: model must be a non-empty string, got {explicit!r}")
        parse_model(explicit)
        return explicit.strip()
    for name in (EXTRACTOR_MODEL_ENV, FALLBACK_MODEL_ENV):
        value = os.environ.get(name, "").strip()
        if value:
            parse_model(value)
            return value
    return DEFAULT_EXTRACTOR_MODEL


def extraction_schema(slugs: Sequence[str] = MAST_SLUGS) -> dict[str, Any]:
    """The JSON schema of the ``report_failures`` tool input (see the module docstring)."""
    step = {"type": ["integer", "null"], "minimum": 0,
            "description": "Index of the step (the number in [brackets]) where it shows; null for the run as a whole."}
    evidence = {"type": "string", "minLength": 1, "maxLength": MAX_EVIDENCE_CHARS,
                "description": "A short verbatim quote copied exactly from the trace (a step's text, tool arguments, "
                               "observation or error, or the final answer)."}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["summary", "task_completed", "mast", "additional_modes", "attribution"],
        "properties": {
            "summary": {"type": "string", "minLength": 1, "maxLength": 400,
                        "description": "One sentence: what the agent did and how the run ended."},
            "task_completed": {"type": "boolean",
                               "description": "True when the run did what the operator asked, fully and correctly."},
            "mast": {
                "type": "object",
                "additionalProperties": False,
                "required": list(slugs),
                "properties": {slug: {"type": "boolean"} for slug in slugs},
                "description": "One flag per MAST failure mode: true when the trace shows that failure.",
            },
            "mast_evidence": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["slug", "step", "evidence"],
                    "properties": {
                        "slug": {"type": "string", "enum": list(slugs)},
                        "description": {"type": "string", "maxLength": 400},
                        "step": step,
                        "evidence": evidence,
                    },
                },
                "description": "For flags set to true: where the failure shows, with a verbatim quote.",
            },
            "additional_modes": {
                "type": "array",
                "maxItems": MAX_ADDITIONAL_MODES,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["title", "description", "step", "evidence"],
                    "properties": {
                        "title": {"type": "string", "minLength": 3, "maxLength": MAX_TITLE_CHARS,
                                  "description": "A short, reusable name for the failure mode (no asset, sensor or "
                                                 "number in it), e.g. 'Ineffective error recovery'."},
                        "description": {"type": "string", "minLength": 1, "maxLength": 400,
                                        "description": "One sentence: what went wrong in this run."},
                        "step": step,
                        "evidence": evidence,
                    },
                },
                "description": "At most two failures of this run that none of the MAST flags captures.",
            },
            "attribution": {
                "type": "object",
                "additionalProperties": False,
                "required": ["attributed_to", "step"],
                "properties": {
                    "attributed_to": {
                        "type": ["string", "null"],
                        "description": "Who failed first: an agent name exactly as in the trace, 'tool' (a tool's own "
                                       "fault) or 'environment'; null when nothing failed.",
                    },
                    "step": step,
                },
            },
        },
    }


SYSTEM_PROMPT = """You are a failure analyst for AI agents that operate industrial assets (chillers, air-handling \
units) through tools: IoT (sites, assets, sensors, readings), FMSR (failure modes and the sensors that reveal them), \
TSFM (forecasting, anomaly detection), WO (work orders, events, alerts) and a maintenance manual. Some runs are one \
agent; others are an orchestrator (supervisor or planner) delegating to domain agents.

You read one recorded run and report its failures by calling the tool {tool} once.

Rules:
- Judge only from the trace. Flag a failure mode only when a step shows it; a mode you cannot point to is false.
- Evidence is a short quote copied exactly, character for character, from the trace: a step's text, a tool's \
arguments, observation or error, or the final answer. Never paraphrase a quote. Quotes not found in the trace are \
discarded.
- Steps are numbered [0], [1], ...; give the number of the step where the failure shows.
- additional_modes are for failures the MAST flags do not capture (at most two, most important first). Give each a \
short reusable title that would fit other runs too (no asset names, sensors or numbers), e.g. "Ineffective error \
recovery", "Overstatement of task completion", "Extraneous or confusing output formatting", "Lack of error handling \
for tool failure", "Failure to incorporate feedback", "Invalid action formatting", or a new one when none fits.
- A run without failures has every flag false, no additional modes and attribution null.

The MAST failure modes (slug: name — definition):
{modes}
"""


def _modes_text(taxonomy: Taxonomy) -> str:
    lines = []
    for slug in MAST_SLUGS:
        mode = taxonomy.mode(slug)
        lines.append(f"- {slug}: {mode.name} — {' '.join(mode.definition.split())}")
    return "\n".join(lines)


def _scenario_text(scenario: Scenario | None, trajectory: Trajectory) -> str:
    if scenario is None:
        return f"Scenario {trajectory.scenario_id} (its record is not available)."
    lines = [
        f"Scenario {scenario.id} ({scenario.type}, {scenario.category})",
        f"Operator request: {scenario.text}",
        f"Requested output format: {scenario.output_format}",
        f"Expected behaviour: {scenario.characteristic_form}",
    ]
    if scenario.sub_agents:
        lines.append(f"Domain agents the task needs: {', '.join(scenario.sub_agents)}")
    if scenario.robustness != "none":
        lines.append(f"Robustness case: {scenario.robustness} (the request is deliberately flawed; a good agent "
                     "asks the operator or says what is missing or conflicting)")
    return "\n".join(lines)


def render_trace(trajectory: Trajectory, max_step_chars: int = DEFAULT_MAX_STEP_CHARS,
                 max_trace_chars: int = DEFAULT_MAX_TRACE_CHARS) -> str:
    """The run as the extractor's prompt shows it: a header, one line per step, the final answer.

    Each step is ``render_step`` with observations clipped to ``max_step_chars``; when the lines exceed
    ``max_trace_chars``, the first and last steps are kept and the middle replaced by a note.
    """
    header = [
        f"Run {trajectory.run_id}: agent {trajectory.agent_id}, orchestration {trajectory.orchestration}, "
        f"status {trajectory.status}"
        + (f" ({trajectory.status_reason.strip()[:300]})" if trajectory.status_reason else ""),
    ]
    lines = [render_step(s, max_step_chars) for s in trajectory.steps]
    total = sum(len(line) + 1 for line in lines)
    if total > max_trace_chars and len(lines) > 2:
        head: list[str] = []
        tail: list[str] = []
        budget = max_trace_chars
        i, j = 0, len(lines) - 1
        while i <= j:
            if len(head) <= len(tail):
                if len(lines[i]) + 1 > budget:
                    break
                head.append(lines[i])
                budget -= len(lines[i]) + 1
                i += 1
            else:
                if len(lines[j]) + 1 > budget:
                    break
                tail.insert(0, lines[j])
                budget -= len(lines[j]) + 1
                j -= 1
        left_out = len(lines) - len(head) - len(tail)
        lines = head + ([f"... [{left_out} steps left out to fit the prompt] ..."] if left_out else []) + tail
    final = trajectory.final_answer
    footer = ["Final answer:", final if final is not None else "(none)"]
    return "\n".join(header + ["Steps:"] + lines + footer)


def _step_or_none(value: Any, n_steps: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value < n_steps else None


def _normalise_agent(name: Any, trajectory: Trajectory) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return None
    wanted = name.strip()
    if wanted.casefold() in (ATTRIBUTION_TOOL, ATTRIBUTION_ENVIRONMENT):
        return wanted.casefold()
    agents = {s.agent_name for s in trajectory.steps}
    for agent in agents:
        if agent.casefold() == wanted.casefold():
            return agent
    from aob_pipeline.lib.failures.detectors import domain_of

    domain = domain_of(wanted)
    if domain is not None:
        for agent in agents:
            if domain_of(agent) == domain:
                return agent
    return wanted


class LLMExtractor:
    """Failure extraction by a model through ``client`` (see the module docstring). ``name`` is the model string.

    ``samples`` > 1 is not offered: one extraction per run is what upstream did and what the cache keys; repeated
    extractions of one run use ``sample_index`` (e.g. a trial number) to get a distinct cached reply.
    """

    def __init__(
        self,
        client: LLMClient,
        model: str | None = None,
        *,
        taxonomy: Taxonomy | None = None,
        max_step_chars: int = DEFAULT_MAX_STEP_CHARS,
        max_trace_chars: int = DEFAULT_MAX_TRACE_CHARS,
        max_tokens: int = 2048,
        max_reasks: int = 2,
        sample_index: int = 0,
        base_url: str | None = None,
        api_key_env: str | None = None,
        structured_mode: str = "auto",
        stream: bool = False,
    ):
        if max_step_chars < 50 or max_trace_chars < 500:
            raise ValueError(f"LLMExtractor: max_step_chars >= 50 and max_trace_chars >= 500, got "
                             f"{max_step_chars} and {max_trace_chars}")
        self.client = client
        self.model = resolve_extractor_model(model)
        self.taxonomy = taxonomy or default_taxonomy()
        self.max_step_chars = max_step_chars
        self.max_trace_chars = max_trace_chars
        self.max_tokens = max_tokens
        self.max_reasks = max_reasks
        self.sample_index = sample_index
        self.system_prompt = SYSTEM_PROMPT.format(tool=TOOL_NAME, modes=_modes_text(self.taxonomy))
        self.schema = extraction_schema()
        self.cost_usd = 0.0
        self.calls = 0
        from aob_pipeline.lib.llm.providers import check_base_url
        from aob_pipeline.lib.llm.structured import resolve_mode

        resolve_mode(self.model, structured_mode)
        self.base_url = check_base_url(base_url or os.environ.get(EXTRACTOR_BASE_URL_ENV) or None,
                                       EXTRACTOR_BASE_URL_ENV)
        self.api_key_env = api_key_env
        self.structured_mode = structured_mode
        self.stream = stream
        self.parse_log: dict[str, dict[str, Any]] = {}
        """run id -> {mode, parse_status (ok / reasked / failed), reasks, notes} of the last extraction."""

    @property
    def name(self) -> str:
        return self.model

    def prompt(self, trajectory: Trajectory, scenario: Scenario | None) -> str:
        """The user message for one run: the scenario, then the trace."""
        return (_scenario_text(scenario, trajectory) + "\n\n"
                + render_trace(trajectory, self.max_step_chars, self.max_trace_chars)
                + f"\n\nReport this run's failures with {TOOL_NAME}.")

    def extract(self, trajectory: Trajectory, scenario: Scenario | None = None) -> Finding:
        """The finding for ``trajectory``; an LLM failure gives a finding with ``extraction_error`` set."""
        try:
            samples = call_structured_samples(
                self.client, self.model, self.system_prompt, self.prompt(trajectory, scenario), self.schema,
                TOOL_NAME, 1,
                tool_description="Report the failures of the run: summary, completion, MAST flags, up to two "
                                 "additional failure modes with evidence, attribution.",
                max_reasks=self.max_reasks, max_tokens=self.max_tokens,
                metadata={"purpose": "trajfm_extraction", "run_id": trajectory.run_id},
                first_sample_index=self.sample_index, mode=self.structured_mode, base_url=self.base_url,
                api_key_env=self.api_key_env, stream=self.stream,
            )
        except StructuredOutputError as exc:
            log.warning("LLM failure extraction of run %s: no valid reply: %s", trajectory.run_id, exc)
            self.parse_log[trajectory.run_id] = {"mode": exc.mode, "parse_status": "failed",
                                                 "reasks": max(0, exc.attempts - 1), "notes": []}
            self.cost_usd += sum(r.cost_usd for r in exc.responses)
            failed = failed_extraction(trajectory, self.name,
                                       f"StructuredOutputError: parse failed ({exc.mode} mode): {exc}"[:2000],
                                       self.taxonomy.version)
            failed.parse_status = f"failed ({exc.mode})"
            return failed
        except (LLMError, LLMCacheError) as exc:
            log.warning("LLM failure extraction of run %s failed: %s", trajectory.run_id, exc)
            return failed_extraction(trajectory, self.name, f"{type(exc).__name__}: {exc}"[:2000],
                                     self.taxonomy.version)
        sample = samples[0]
        self.parse_log[trajectory.run_id] = {"mode": sample.mode, "parse_status": sample.parse_status,
                                             "reasks": sample.reasks, "notes": list(sample.notes)}
        self.calls += 1
        self.cost_usd += sample.cost_usd
        finding = self.finding_from_output(trajectory, sample.value)
        finding.parse_status = f"{sample.parse_status} ({sample.mode})"
        return finding

    def finding_from_output(self, trajectory: Trajectory, output: Mapping[str, Any]) -> Finding:
        """Turn a validated ``report_failures`` input into a ``Finding``, checking every quote against the trace."""
        checker = TraceEvidence(trajectory)
        n_steps = len(trajectory.steps)
        mast = {slug: bool(output["mast"][slug]) for slug in MAST_SLUGS}
        details: dict[str, ModeDetail] = {}
        for item in output.get("mast_evidence") or []:
            slug = item["slug"]
            if not mast.get(slug) or slug in details:
                continue
            if not checker.contains(item["evidence"]):
                continue
            details[slug] = ModeDetail(
                slug, (item.get("description") or "").strip() or f"{self.taxonomy.mode(slug).name} (quoted).",
                _step_or_none(item.get("step"), n_steps), item["evidence"], None, LLM_DETECTOR,
            )
        additional: list[AdditionalMode] = []
        seen: set[str] = set()
        for item in output.get("additional_modes") or []:
            title = " ".join(item["title"].split())
            if title.casefold() in seen:
                continue
            if not checker.contains(item["evidence"]):
                continue
            seen.add(title.casefold())
            additional.append(AdditionalMode(title, " ".join(item["description"].split()),
                                             _step_or_none(item.get("step"), n_steps), item["evidence"], None,
                                             LLM_DETECTOR))
        attribution = output.get("attribution") or {}
        return Finding(
            run_id=trajectory.run_id, agent_id=trajectory.agent_id, scenario_id=trajectory.scenario_id,
            extractor=self.name, taxonomy_version=self.taxonomy.version, orchestration=trajectory.orchestration,
            summary=" ".join(output["summary"].split()), task_completed=bool(output["task_completed"]),
            mast=mast, mast_details=details, additional=additional[:MAX_ADDITIONAL_MODES],
            attributed_to=_normalise_agent(attribution.get("attributed_to"), trajectory),
            attributed_step=_step_or_none(attribution.get("step"), n_steps),
            evidence_rejections=checker.rejected,
        )


def output_for(finding: Finding) -> dict[str, Any]:
    """The ``report_failures`` input that would give ``finding`` (for scripting the fake client in tests/benches)."""
    return json.loads(json.dumps({
        "summary": finding.summary or "No summary.",
        "task_completed": bool(finding.task_completed),
        "mast": {slug: bool((finding.mast or {}).get(slug)) for slug in MAST_SLUGS},
        "mast_evidence": [{"slug": d.slug, "description": d.description, "step": d.step, "evidence": d.evidence}
                          for d in finding.mast_details.values() if d.evidence],
        "additional_modes": [{"title": a.title, "description": a.description, "step": a.step, "evidence": a.evidence}
                             for a in finding.additional],
        "attribution": {"attributed_to": finding.attributed_to, "step": finding.attributed_step},
    }))
