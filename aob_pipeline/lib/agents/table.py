"""The ``agents`` table: the agent registry as analysts see it, one row per registered agent.

``agents_frame(specs)`` turns the registry (``load_agent_registry(settings, include_unavailable=True)``) into
the rows of ``AGENTS_TABLE``: how each agent is run (kind, orchestration, entry point), its run settings
(trials, timeout, step budget, deterministic), whether it can run now (``available``: agents that need
``ANTHROPIC_API_KEY`` are unavailable when it is not set), where it was registered, and a fingerprint of its
registry entry.

Nothing secret is written: the key's *presence* decides ``available``, but no environment value is read into
the table, and a command agent's arguments are not copied (only its program and the files it runs, by file
name), so a token passed on a command line never reaches the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from aob_pipeline.lib.agents.registry import AgentSpec, agent_available, needs_api_key
from aob_pipeline.lib.settings import ASSETS_DATA, PROJECT_ROOT
from aob_pipeline.lib.warehouse.schema import Column, Table

BUILTIN_REGISTRY = ASSETS_DATA / "agents.yaml"
BUILTIN_SOURCE = "built-in"
SUBMITTED_SOURCE = "submitted"

BUILTIN_ORCHESTRATION: dict[str, str] = {
    "oracle": "oracle",
    "heuristic_single": "single",
    "heuristic_plan_execute": "plan_execute",
    "do_nothing": "heuristic",
    "claude_react": "single",
    "claude_agents_as_tools": "agents_as_tools",
    "claude_plan_execute": "plan_execute",
}
"""The ``orchestration`` class attribute of each built-in agent (what its trajectories record), read here
without constructing the agent (a test checks it against the classes)."""

KIND_ORCHESTRATION = {"command": "command", "fault": "fault_injected", "imported": "imported"}
LLM_ORCHESTRATION = {"react": "single", "agents_as_tools": "agents_as_tools", "plan_execute": "plan_execute"}
"""kind llm: the registry's orchestration name -> what its trajectories record."""


def _wraps_llm(spec: AgentSpec, specs: list[AgentSpec]) -> bool:
    by_id = {s.agent_id: s for s in specs}
    seen = set()
    current: AgentSpec | None = spec
    while current is not None and current.agent_id not in seen:
        if current.kind == "llm":
            return True
        seen.add(current.agent_id)
        current = by_id.get(current.inner) if current.kind == "fault" and current.inner else None
    return False

AGENTS_TABLE = Table(
    "agents",
    "One row per registered agent (built-in ones from assets_data/agents.yaml, submitted ones from "
    "$AOB_HOME/agents.yaml): how it is run, its run settings and whether it can run now. Agents that need "
    "ANTHROPIC_API_KEY are listed even when it is not set (then available is false).",
    (
        Column("agent_id", "VARCHAR", "Registered agent id (trajectories.agent_id, leaderboard.agent_id).", False),
        Column("kind", "VARCHAR", ("How the agent is built: builtin (shipped with the project), python "
                                   "(MODULE:CLASS), command (a JSON-lines subprocess) or fault (a built-in wrapper "
                                   "that plants one known fault into another agent's runs)."), False),
        Column("orchestration", "VARCHAR", ("single, agents_as_tools, plan_execute, heuristic, oracle, command or "
                                            "fault_injected, as its trajectories record it; NULL for python agents "
                                            "(their class decides at run time: see trajectories.orchestration).")),
        Column("entry_point", "VARCHAR", ("What runs: the built-in's name, MODULE:CLASS, the command's program and "
                                          "the files it runs (file names only; arguments are not copied), or "
                                          "'<inner> + <fault>'."), False),
        Column("inner_agent_id", "VARCHAR", "kind fault: the agent whose runs the fault is planted into."),
        Column("fault", "VARCHAR", "kind fault: the planted fault (see judge_sensitivity.fault)."),
        Column("deterministic", "BOOLEAN", ("Same inputs give the same trajectory, so the nightly run re-runs it "
                                            "only when its inputs change (trajectory_inputs)."), False),
        Column("trials", "INTEGER", "Trials per scenario it is registered for (pass^k needs k trials).", False),
        Column("timeout_s", "DOUBLE", "Wall-clock limit of one run in seconds.", False),
        Column("max_steps", "INTEGER", ("Most steps one run may record (thoughts, messages, tool calls, operator "
                                        "questions and replies; the final answer not counted) before it is stopped."),
               False),
        Column("requires_api_key", "BOOLEAN", "Needs ANTHROPIC_API_KEY, itself or through the agent it wraps.",
               False),
        Column("available", "BOOLEAN", ("Can run now: it needs no API key, or ANTHROPIC_API_KEY was set when this "
                                        "table was written (only the key's presence is checked)."), False),
        Column("source", "VARCHAR", ("built-in (assets_data/agents.yaml) or submitted ($AOB_HOME/agents.yaml, "
                                     "written by `aob agents add`)."), False),
        Column("description", "VARCHAR", "What the agent does, as registered (NULL when none was given)."),
        Column("fingerprint", "VARCHAR", ("SHA-256 of the registry entry (description and location left out) and "
                                          "of the files its command runs: changes exactly when what runs changes."),
               False),
    ),
    key=("agent_id",),
)


def _registry_dir(spec: AgentSpec) -> Path:
    base = Path(spec.source).parent if spec.source else PROJECT_ROOT
    return PROJECT_ROOT if base == ASSETS_DATA else base


def _command_files(spec: AgentSpec) -> list[Path]:
    """The files a command agent's argv names (absolute, or relative to its registry as ``build_agent`` resolves)."""
    files = []
    base = _registry_dir(spec)
    for part in (spec.command or [])[1:]:
        if part.startswith("-"):
            continue
        path = Path(part) if os.path.isabs(part) else base / part
        if path.is_file():
            files.append(path)
    return files


def entry_point(spec: AgentSpec) -> str:
    """What runs, without command-line arguments (see ``AGENTS_TABLE``)."""
    if spec.kind == "builtin":
        return str(spec.builtin)
    if spec.kind == "python":
        return str(spec.python)
    if spec.kind == "fault":
        return f"{spec.inner} + {spec.fault}"
    if spec.kind == "llm":
        return str(spec.model) + (f" @ {spec.base_url}" if spec.base_url else "") + (
            " (text ReAct)" if spec.tool_mode == "text" else "")
    if spec.kind == "imported":
        return f"imported runs: {Path(spec.trajectories or '?').name}"
    program = Path((spec.command or ["?"])[0]).name
    return " ".join([program, *(p.name for p in _command_files(spec))])


def entry_fingerprint(spec: AgentSpec) -> str:
    """SHA-256 of the registry entry (without ``source`` and ``description``) and of its command's files."""
    runs = [Path(spec.trajectories)] if spec.kind == "imported" and spec.trajectories else []
    files = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in _command_files(spec) + runs if p.is_file()}
    payload = {"agent": spec.model_dump(exclude={"source", "description"}), "files": files}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _source(spec: AgentSpec) -> str:
    try:
        builtin = Path(spec.source).resolve() == BUILTIN_REGISTRY.resolve()
    except (OSError, ValueError):
        builtin = False
    return BUILTIN_SOURCE if builtin else SUBMITTED_SOURCE


def agents_frame(specs: list[AgentSpec], api_key_set: bool | None = None) -> pd.DataFrame:
    """The rows of the ``agents`` table for the registry ``specs`` (pass every agent: ``include_unavailable``).

    ``api_key_set``: whether ``ANTHROPIC_API_KEY`` is set (default: looked up; only its presence is used).
    """
    if api_key_set is None:
        api_key_set = bool(os.environ.get("ANTHROPIC_API_KEY"))
    rows = []
    for spec in specs:
        needs_key = needs_api_key(spec, specs)
        orchestration = (BUILTIN_ORCHESTRATION.get(str(spec.builtin)) if spec.kind == "builtin"
                         else LLM_ORCHESTRATION[spec.orchestration] if spec.kind == "llm"
                         else KIND_ORCHESTRATION.get(spec.kind))
        rows.append({
            "agent_id": spec.agent_id,
            "kind": spec.kind,
            "orchestration": orchestration,
            "entry_point": entry_point(spec),
            "inner_agent_id": spec.inner if spec.kind == "fault" else None,
            "fault": spec.fault if spec.kind == "fault" else None,
            "deterministic": spec.deterministic,
            "trials": spec.trials,
            "timeout_s": float(spec.timeout_s),
            "max_steps": spec.max_steps,
            "requires_api_key": needs_key,
            "available": (agent_available(spec, specs) if _wraps_llm(spec, specs)
                          else not needs_key or api_key_set),
            "source": _source(spec),
            "description": spec.description or None,
            "fingerprint": entry_fingerprint(spec),
        })
    return pd.DataFrame(rows, columns=AGENTS_TABLE.column_names)


__all__ = ["AGENTS_TABLE", "BUILTIN_ORCHESTRATION", "agents_frame", "entry_fingerprint", "entry_point"]
