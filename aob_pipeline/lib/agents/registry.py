"""The agent registry: which agents exist, how each is built, how many trials it gets.

Two files are merged, built-ins first:
- ``assets_data/agents.yaml`` (tracked): the built-in field — oracle, heuristics, do-nothing, the
  example command agent, the fault-injected variants, and the Claude agents (used only when
  ``ANTHROPIC_API_KEY`` is set);
- ``$AOB_HOME/agents.yaml`` (written by ``aob agents add``): submitted agents.

An entry::

    - agent_id: my_agent              # letters, digits, '_', '-', '.', '+' (it becomes a partition key)
      kind: command                   # builtin | python | command | fault
      command: ["python3", "agent.py"] # kind command: argv; paths relative to the registry file
      python: "my_pkg.agents:MyAgent"  # kind python: MODULE:CLASS, constructed without arguments
      builtin: oracle                  # kind builtin: a name in BUILTINS
      inner: heuristic_single          # kind fault: the wrapped agent and the fault it plants
      fault: invented_value
      trials: 1                        # trials per scenario (pass^k needs k > 1 for non-deterministic agents)
      deterministic: true              # the nightly run re-runs deterministic agents only when inputs change
      timeout_s: 120
      description: "..."
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aob_pipeline.lib.errors import AobError
from aob_pipeline.lib.settings import ASSETS_DATA, PROJECT_ROOT, Settings

AGENT_ID_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,80}$")


class AgentRegistryError(AobError, ValueError):
    """A malformed registry file or entry; the message names the file, the entry and the field."""


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str
    kind: Literal["builtin", "python", "command", "fault"]
    builtin: str | None = None
    python: str | None = None
    command: list[str] | None = None
    inner: str | None = None
    fault: str | None = None
    trials: int = Field(default=1, ge=1, le=50)
    deterministic: bool = True
    timeout_s: float = Field(default=120.0, gt=0)
    max_steps: int = Field(default=100, ge=1)
    requires_api_key: bool = False
    description: str = ""
    source: str = Field(default="", description="Registry file the entry came from.")

    @field_validator("agent_id")
    @classmethod
    def _valid_id(cls, v: str) -> str:
        if not AGENT_ID_RE.match(v):
            raise ValueError("must be 1-80 characters of letters, digits, '_', '-', '.', '+'")
        return v

    @model_validator(mode="after")
    def _kind_fields(self) -> "AgentSpec":
        needed = {"builtin": "builtin", "python": "python", "command": "command", "fault": "inner"}[self.kind]
        if not getattr(self, needed):
            raise ValueError(f"kind '{self.kind}' needs the field '{needed}'")
        if self.kind == "fault" and not self.fault:
            raise ValueError("kind 'fault' needs the field 'fault'")
        return self


def user_registry_path(settings: Settings) -> Path:
    return settings.home / "agents.yaml"


def _read_registry_file(path: Path) -> list[AgentSpec]:
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise AgentRegistryError(f"{path}: not valid YAML: {exc}") from exc
    entries = data.get("agents", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise AgentRegistryError(f"{path}: expected a mapping with a list under 'agents'")
    specs = []
    for i, entry in enumerate(entries, start=1):
        label = entry.get("agent_id", "?") if isinstance(entry, dict) else "?"
        try:
            spec = AgentSpec.model_validate({**entry, "source": str(path)})
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "(entry)"
            raise AgentRegistryError(f"{path}: entry {i} ({label}): field '{field}': {err['msg']}") from exc
        except TypeError as exc:
            raise AgentRegistryError(f"{path}: entry {i}: expected a mapping") from exc
        specs.append(spec)
    return specs


def load_agent_registry(settings: Settings | None = None, include_unavailable: bool = False) -> list[AgentSpec]:
    """Built-in agents then submitted ones; duplicates are an error naming both files.

    Agents that need ``ANTHROPIC_API_KEY`` are left out when it is not set, unless ``include_unavailable``.
    """
    settings = settings or Settings.from_env()
    specs: dict[str, AgentSpec] = {}
    for path in (ASSETS_DATA / "agents.yaml", user_registry_path(settings)):
        for spec in _read_registry_file(path):
            if spec.agent_id in specs:
                raise AgentRegistryError(
                    f"{path}: agent_id '{spec.agent_id}' is already registered in {specs[spec.agent_id].source}"
                )
            specs[spec.agent_id] = spec
    for spec in specs.values():
        if spec.kind == "fault" and spec.inner not in specs:
            raise AgentRegistryError(f"{spec.source}: agent '{spec.agent_id}': field 'inner': unknown agent '{spec.inner}'")
    if not include_unavailable and not os.environ.get("ANTHROPIC_API_KEY"):
        specs = {k: s for k, s in specs.items() if not _needs_key(s, specs)}
    return list(specs.values())


def _needs_key(spec: AgentSpec, specs: dict[str, AgentSpec]) -> bool:
    if spec.requires_api_key:
        return True
    if spec.kind == "fault" and spec.inner in specs:
        return _needs_key(specs[spec.inner], specs)
    return False


def needs_api_key(spec: AgentSpec, registry: list[AgentSpec]) -> bool:
    """Whether ``spec`` needs ``ANTHROPIC_API_KEY`` (itself, or through the agent it wraps), the rule by which
    ``load_agent_registry`` leaves agents out when the key is not set."""
    return _needs_key(spec, {s.agent_id: s for s in registry})


def get_agent_spec(agent_id: str, settings: Settings | None = None) -> AgentSpec:
    for spec in load_agent_registry(settings, include_unavailable=True):
        if spec.agent_id == agent_id:
            return spec
    known = ", ".join(s.agent_id for s in load_agent_registry(settings, include_unavailable=True))
    raise AgentRegistryError(f"unknown agent '{agent_id}' (registered: {known})")


def add_agent(settings: Settings, spec: AgentSpec) -> Path:
    """Append a submitted agent to ``$AOB_HOME/agents.yaml`` (refuses an id already registered)."""
    existing = {s.agent_id for s in load_agent_registry(settings, include_unavailable=True)}
    if spec.agent_id in existing:
        raise AgentRegistryError(f"agent_id '{spec.agent_id}' is already registered")
    path = user_registry_path(settings)
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    data = data or {"agents": []}
    entry = spec.model_dump(exclude_defaults=True, exclude={"source"})
    entry["agent_id"], entry["kind"] = spec.agent_id, spec.kind
    data["agents"].append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------------ building


def _builtin_factories() -> dict[str, Callable[[], Any]]:
    def oracle():
        from aob_pipeline.lib.agents.faults import OracleAdapter
        from aob_pipeline.lib.agents.oracle import OracleAgent

        return OracleAdapter(OracleAgent())

    def heuristic_single():
        from aob_pipeline.lib.agents.heuristic import HeuristicSingleAgent

        return HeuristicSingleAgent()

    def heuristic_plan_execute():
        from aob_pipeline.lib.agents.heuristic import HeuristicPlanExecuteAgent

        return HeuristicPlanExecuteAgent()

    def do_nothing():
        from aob_pipeline.lib.agents.heuristic import DoNothingAgent

        return DoNothingAgent()

    def claude_react():
        from aob_pipeline.lib.agents.claude import ClaudeReActAgent

        return ClaudeReActAgent()

    def claude_agents_as_tools():
        from aob_pipeline.lib.agents.claude import ClaudeAgentsAsToolsAgent

        return ClaudeAgentsAsToolsAgent()

    def claude_plan_execute():
        from aob_pipeline.lib.agents.claude import ClaudePlanExecuteAgent

        return ClaudePlanExecuteAgent()

    return {
        "oracle": oracle,
        "heuristic_single": heuristic_single,
        "heuristic_plan_execute": heuristic_plan_execute,
        "do_nothing": do_nothing,
        "claude_react": claude_react,
        "claude_agents_as_tools": claude_agents_as_tools,
        "claude_plan_execute": claude_plan_execute,
    }


BUILTINS = tuple(_builtin_factories())


def build_agent(spec: AgentSpec, registry: list[AgentSpec] | None = None) -> Any:
    """Construct the agent an entry describes; its ``agent_id`` is set to the entry's id."""
    if spec.kind == "builtin":
        factories = _builtin_factories()
        if spec.builtin not in factories:
            raise AgentRegistryError(
                f"{spec.source}: agent '{spec.agent_id}': field 'builtin': unknown built-in '{spec.builtin}' "
                f"(known: {', '.join(factories)})"
            )
        agent = factories[spec.builtin]()
    elif spec.kind == "python":
        module_name, _, class_name = spec.python.partition(":")
        if not class_name:
            raise AgentRegistryError(f"{spec.source}: agent '{spec.agent_id}': field 'python': expected MODULE:CLASS")
        try:
            agent = getattr(importlib.import_module(module_name), class_name)()
        except (ImportError, AttributeError) as exc:
            raise AgentRegistryError(f"{spec.source}: agent '{spec.agent_id}': field 'python': {exc}") from exc
    elif spec.kind == "command":
        from aob_pipeline.lib.agents.command import CommandAgent, resolve_argv

        base = Path(spec.source).parent if spec.source else PROJECT_ROOT
        if base == ASSETS_DATA:
            base = PROJECT_ROOT
        agent = CommandAgent(spec.agent_id, resolve_argv(spec.command, base), timeout_s=spec.timeout_s,
                             max_steps=spec.max_steps)
    else:  # fault
        from aob_pipeline.lib.agents.faults import FaultInjectingAgent

        registry = registry or load_agent_registry(include_unavailable=True)
        inner_spec = next((s for s in registry if s.agent_id == spec.inner), None)
        if inner_spec is None:
            raise AgentRegistryError(f"{spec.source}: agent '{spec.agent_id}': field 'inner': unknown agent '{spec.inner}'")
        agent = FaultInjectingAgent(build_agent(inner_spec, registry), spec.fault, seed=0)
    try:
        agent.agent_id = spec.agent_id
    except AttributeError:
        pass
    return agent
