"""`aob run`: the agent builder's local loop on public scenarios, with readable traces.

Scenarios are rendered at the current world's now and their expected answers computed on the fly
(read-only warehouse connection), so a builder sees whether each answer matched and why.
"""

from __future__ import annotations

import json
from typing import Any

from aob_pipeline.lib.scenarios.compare import compare_answers
from aob_pipeline.lib.scenarios.loader import get_scenario, list_scenarios
from aob_pipeline.lib.scenarios.materialize import materialize_scenarios, scenario_from_row
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.warehouse import connect, frame_records


def check_runnable(spec: Any) -> str:
    """The runtime ``spec`` will run in (``effective_runtime``), after the checks its first run would make:
    raises ``SandboxUnavailable`` (what to install), ``SandboxPathError`` (a code folder the agent must not
    see) or ``AgentRegistryError`` (a runtime the agent may not use, a Python module not found), so that
    ``aob agents add`` and ``aob run`` refuse at once instead of recording one crashed run per scenario."""
    from pathlib import Path

    from aob_pipeline.lib.agents.command import resolve_argv
    from aob_pipeline.lib.agents.registry import effective_runtime, python_code_dir
    from aob_pipeline.lib.agents.sandbox import code_folders
    from aob_pipeline.lib.settings import ASSETS_DATA, PROJECT_ROOT

    runtime = effective_runtime(spec)
    if runtime == "sandbox":
        if spec.kind == "python":
            code_folders([str(python_code_dir(spec))])
        elif spec.kind == "command":
            base = Path(spec.source).parent if spec.source else PROJECT_ROOT
            code_folders(resolve_argv(spec.command, PROJECT_ROOT if base == ASSETS_DATA else base))
    return runtime


def local_scenarios(settings: Settings, scenario_ids: list[str]) -> list[tuple[Any, dict[str, Any]]]:
    """Rendered public scenarios with their expected answers: ``[(scenario, {value, format, tolerance, aliases})]``.

    Raises ``ValueError`` for a hidden scenario (agent builders never see those) and ``KeyError`` for an unknown id.
    """
    templates = [get_scenario(i) for i in scenario_ids] if scenario_ids else list_scenarios(split="public")
    hidden = [t.id for t in templates if t.split != "public"]
    if hidden:
        raise ValueError(f"hidden scenario(s) cannot be run locally: {', '.join(hidden)}")
    if not settings.warehouse_path.exists():
        raise FileNotFoundError(f"no warehouse at {settings.warehouse_path}: run `aob world build` first")
    with connect(settings.warehouse_path, read_only=True) as con:
        frame = materialize_scenarios(con, templates)
    out = []
    for row in frame_records(frame):
        expected = {
            "value": _load(row.get("expected_answer")),
            "format": row.get("answer_format"),
            "tolerance": _load(row.get("answer_tolerance")),
            "aliases": _load(row.get("answer_aliases")),
            "answerable": bool(row.get("answerable")),
        }
        out.append((scenario_from_row(row), expected))
    return out


def _load(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_trace(traj: Any, expected: dict[str, Any] | None, quiet: bool = False) -> tuple[bool, str]:
    """(matched, text): a one-line verdict, then (unless quiet) every step of the run."""
    matched, reason = False, "no expected answer"
    if expected and expected.get("answerable") and traj.status == "completed":
        m = compare_answers(expected["value"], traj.final_answer, expected["format"], expected.get("tolerance"),
                            aliases=expected.get("aliases") or None)
        matched, reason = m.matched, m.reason
    elif traj.status != "completed":
        reason = f"{traj.status}: {traj.status_reason}"
    head = (f"{traj.agent_id} on {traj.scenario_id} (trial {traj.trial}): {traj.status}, "
            f"{len(traj.steps)} steps — {'MATCH' if matched else 'no match'} ({reason})")
    if quiet:
        return matched, head
    lines = [head]
    for step in traj.steps:
        who = step.agent_name or "agent"
        if step.kind == "tool_call":
            lines.append(f"   {step.index:>3} {who} → {step.tool}({_short(step.arguments, 100)})")
            if step.error:
                lines.append(f"        error: {_short(step.error)}")
            else:
                lines.append(f"        = {_short(step.observation)}")
        else:
            lines.append(f"   {step.index:>3} {who} [{step.kind}] {_short(step.content)}")
    lines.append(f"   final answer: {_short(traj.final_answer, 400)}")
    if expected and expected.get("answerable"):
        lines.append(f"   expected:     {_short(expected['value'], 400)}")
    return matched, "\n".join(lines)
