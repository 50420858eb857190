"""The agent registry: which agents exist, how each is built, how many trials it gets.

Two files are merged, built-ins first:
- ``assets_data/agents.yaml`` (tracked): the built-in field — oracle, heuristics, do-nothing, the
  example command agent, the fault-injected variants, and the Claude agents (used only when
  ``ANTHROPIC_API_KEY`` is set);
- ``$AOB_HOME/agents.yaml`` (written by ``aob agents add``): submitted agents.

An entry::

    - agent_id: my_agent              # letters, digits, '_', '-', '.', '+' (it becomes a partition key)
      kind: command                   # builtin | python | command | fault | llm | imported
      command: ["python3", "agent.py"] # kind command: argv; paths relative to the registry file
      python: "my_pkg.agents:MyAgent"  # kind python: MODULE:CLASS, constructed without arguments
      builtin: oracle                  # kind builtin: a name in BUILTINS
      trajectories: runs/my.jsonl      # kind imported: recorded runs (``aob trajectories import PATH --agent NAME``),
                                       # replayed by evaluation: nothing runs, the runs are judged and analysed
      inner: heuristic_single          # kind fault: the wrapped agent and the fault it plants
      fault: invented_value
      model: openai/llama3.1:8b        # kind llm: a model string, anthropic/<model> or openai/<model>
      orchestration: react             # kind llm: react | agents_as_tools | plan_execute
      base_url: http://gpu1:8000/v1    # kind llm, optional: the server (default OPENAI_BASE_URL / ANTHROPIC_BASE_URL)
      api_key_env: GPU1_KEY            # kind llm, optional: the variable holding its key (default the SDK's)
      tool_mode: native                # kind llm: native tool calls, or text (Thought/Action/Action Input ReAct)
      stream: false                    # kind llm: ask for streamed replies
      trials: 1                        # trials per scenario (pass^k needs k > 1 for non-deterministic agents)
      deterministic: true              # the nightly run re-runs deterministic agents only when inputs change
      timeout_s: 120
      description: "..."
      runtime: sandbox                 # sandbox | container | trusted (default: see effective_runtime)
      trusted: false                   # `aob agents add --trusted`: may run outside the sandbox
      image: "python:3.11-slim"        # runtime container: the image
      protocol: jsonl                  # kind command: jsonl (docs/AGENT_PROTOCOL.md) or mcp (an MCP client on stdio)
      code_dir: /path/to/agent         # kind python, untrusted: the folder that holds MODULE (bound read-only)

Runtimes (``effective_runtime``): agents shipped in ``assets_data/agents.yaml`` and agents registered with
``trusted: true`` are trusted; every other agent is not. An untrusted ``command`` agent runs in the ``sandbox``
(bubblewrap, ``lib/agents/sandbox.py``) or a ``container`` (Docker); an untrusted ``python`` agent runs in the
sandbox through the command runner (``lib/agents/sandbox_bridge.py``), never in the pipeline's process.
``runtime: trusted`` (the plain subprocess, or in-process for Python classes) is refused for untrusted agents.
When bubblewrap cannot run here, an untrusted agent is refused with what to install; a trusted command agent
whose runtime is not set explicitly falls back to the plain subprocess.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

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
    kind: Literal["builtin", "python", "command", "fault", "llm", "imported"]
    builtin: str | None = None
    python: str | None = None
    command: list[str] | None = None
    inner: str | None = None
    fault: str | None = None
    trajectories: str | None = None
    trials: int = Field(default=1, ge=1, le=50)
    deterministic: bool = True
    timeout_s: float = Field(default=120.0, gt=0)
    max_steps: int = Field(default=100, ge=1)
    requires_api_key: bool = False
    model: str | None = None
    orchestration: Literal["react", "agents_as_tools", "plan_execute"] = "react"
    base_url: str | None = None
    api_key_env: str | None = None
    tool_mode: Literal["native", "text"] = "native"
    stream: bool = False
    description: str = ""
    runtime: Literal["sandbox", "container", "trusted"] | None = None
    trusted: bool = False
    image: str | None = None
    protocol: Literal["jsonl", "mcp"] = "jsonl"
    code_dir: str | None = None
    source: str = Field(default="", description="Registry file the entry came from.")

    @field_validator("agent_id")
    @classmethod
    def _valid_id(cls, v: str) -> str:
        if not AGENT_ID_RE.match(v):
            raise ValueError("must be 1-80 characters of letters, digits, '_', '-', '.', '+'")
        return v

    @model_validator(mode="after")
    def _kind_fields(self) -> AgentSpec:
        needed = {"builtin": "builtin", "python": "python", "command": "command", "fault": "inner",
                  "llm": "model", "imported": "trajectories"}[self.kind]
        if not getattr(self, needed):
            raise ValueError(f"kind '{self.kind}' needs the field '{needed}'")
        if self.kind == "llm":
            from aob_pipeline.lib.llm.providers import check_base_url, parse_model

            assert self.model is not None  # checked just above
            parse_model(self.model)
            self.base_url = check_base_url(self.base_url)
        elif self.model is not None or self.base_url is not None:
            raise ValueError(f"'model' and 'base_url' belong to kind 'llm', not '{self.kind}'")
        if self.kind == "fault" and not self.fault:
            raise ValueError("kind 'fault' needs the field 'fault'")
        if self.runtime == "container" and not self.image:
            raise ValueError("runtime 'container' needs the field 'image'")
        if self.runtime == "container" and self.kind != "command":
            raise ValueError("runtime 'container' is for kind 'command' only")
        if self.protocol == "mcp" and self.kind != "command":
            raise ValueError("protocol 'mcp' is for kind 'command' only")
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

    Agents that cannot reach their model now are left out unless ``include_unavailable``: the built-in Claude
    agents without ``ANTHROPIC_API_KEY``, a ``kind: llm`` entry whose provider has no key while it points at the
    provider's public API (an entry on a local server, or with ``OPENAI_BASE_URL`` set, needs none).
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
    if not include_unavailable:
        specs = {k: s for k, s in specs.items() if _available(s, specs)}
    return list(specs.values())


def _needs_key(spec: AgentSpec, specs: dict[str, AgentSpec]) -> bool:
    if spec.requires_api_key:
        return True
    if spec.kind == "llm":
        from aob_pipeline.lib.llm.providers import resolve_endpoint

        assert spec.model is not None  # _kind_fields: kind 'llm' needs a model
        return resolve_endpoint(spec.model, spec.base_url, spec.api_key_env).is_default
    if spec.kind == "fault" and spec.inner in specs:
        return _needs_key(specs[spec.inner], specs)
    return False


def _available(spec: AgentSpec, specs: dict[str, AgentSpec]) -> bool:
    if spec.kind == "llm":
        from aob_pipeline.lib.llm.providers import provider_configured

        assert spec.model is not None  # _kind_fields: kind 'llm' needs a model
        return provider_configured(spec.model, spec.base_url, spec.api_key_env)
    if spec.requires_api_key:
        return bool(os.environ.get("ANTHROPIC_API_KEY"))
    if spec.kind == "fault" and spec.inner in specs:
        return _available(specs[spec.inner], specs)
    return True


def agent_available(spec: AgentSpec, registry: list[AgentSpec]) -> bool:
    """Whether ``spec`` can reach its model now (itself, or through the agent it wraps): the rule by which
    ``load_agent_registry`` leaves agents out."""
    return _available(spec, {s.agent_id: s for s in registry})


def needs_api_key(spec: AgentSpec, registry: list[AgentSpec]) -> bool:
    """Whether ``spec`` needs an API key (itself, or through the agent it wraps): the built-in Claude agents, and
    ``kind: llm`` entries whose endpoint is a provider's public API."""
    return _needs_key(spec, {s.agent_id: s for s in registry})


def get_agent_spec(agent_id: str, settings: Settings | None = None) -> AgentSpec:
    for spec in load_agent_registry(settings, include_unavailable=True):
        if spec.agent_id == agent_id:
            return spec
    known = ", ".join(s.agent_id for s in load_agent_registry(settings, include_unavailable=True))
    raise AgentRegistryError(f"unknown agent '{agent_id}' (registered: {known})")


def upsert_imported_agent(settings: Settings, agent_id: str, trajectories: Path, description: str = "",
                          trials: int = 1) -> Path:
    """Register (or update) ``agent_id`` as an imported agent whose runs are in ``trajectories``. Refuses an id
    that names a built-in or a submitted agent of another kind."""
    path = user_registry_path(settings)
    for spec in load_agent_registry(settings, include_unavailable=True):
        if spec.agent_id == agent_id and spec.kind != "imported":
            raise AgentRegistryError(f"agent_id '{agent_id}' is already registered as a {spec.kind} agent "
                                     f"({spec.source}); choose another name for imported runs")
    data = (yaml.safe_load(path.read_text()) if path.exists() else None) or {"agents": []}
    entries = [e for e in data.get("agents") or [] if e.get("agent_id") != agent_id]
    entry = AgentSpec(agent_id=agent_id, kind="imported", trajectories=str(trajectories), trials=max(1, min(trials, 50)),
                      description=description or "runs recorded elsewhere and imported").model_dump(
        exclude_defaults=True, exclude={"source"})
    entry["agent_id"], entry["kind"] = agent_id, "imported"
    entries.append(entry)
    data["agents"] = entries
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)
    return path


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


# ------------------------------------------------------------------------------------------ runtimes


def is_trusted(spec: AgentSpec) -> bool:
    """Shipped with the project (``assets_data/agents.yaml``) or registered with ``trusted: true``."""
    return spec.trusted or (bool(spec.source) and Path(spec.source).resolve() == (ASSETS_DATA / "agents.yaml").resolve())


def effective_runtime(spec: AgentSpec) -> str:
    """Where the agent runs: ``sandbox``, ``container``, ``trusted`` (plain subprocess / the pipeline's process)
    ``builtin`` (the project's own agents, fault wrappers and LLM orchestrations, in-process) or ``imported``
    (recorded runs replayed from a file: nothing runs).

    Raises ``AgentRegistryError`` for ``runtime: trusted`` on an untrusted agent and ``SandboxUnavailable``
    (with what to install) when an untrusted agent needs the sandbox and bubblewrap cannot run here.
    """
    from aob_pipeline.lib.agents.sandbox import require_sandbox, sandbox_status

    if spec.kind in ("builtin", "fault", "llm"):
        return "builtin"  # the project's own code; an llm agent's model is reached over HTTP from the runner
    if spec.kind == "imported":
        return "imported"  # recorded runs replayed from a file: no code runs
    trusted = is_trusted(spec)
    if spec.runtime == "trusted" and not trusted:
        raise AgentRegistryError(
            f"{spec.source or 'agent'}: agent '{spec.agent_id}': field 'runtime': 'trusted' is allowed only for "
            "agents shipped with the project or registered with `aob agents add --trusted`")
    if spec.runtime is not None:
        runtime = spec.runtime
    elif spec.kind == "python" and trusted:
        runtime = "trusted"
    elif trusted and not sandbox_status()[0]:
        runtime = "trusted"  # a shipped/trusted command agent without bwrap: the plain subprocess
    else:
        runtime = "sandbox"
    if runtime == "sandbox":
        require_sandbox(spec.agent_id)
    return runtime


def python_code_dir(spec: AgentSpec) -> Path:
    """The folder that holds an untrusted Python agent's top-level module: ``code_dir``, else the registry
    file's folder. Found on disk without importing anything."""
    base = Path(spec.code_dir) if spec.code_dir else (Path(spec.source).parent if spec.source else Path.cwd())
    if not base.is_absolute() and spec.source:
        base = Path(spec.source).parent / base
    top = (spec.python or "").partition(":")[0].split(".")[0]
    if not top or not ((base / top).is_dir() or (base / f"{top}.py").is_file()):
        raise AgentRegistryError(
            f"{spec.source or 'agent'}: agent '{spec.agent_id}': field 'python': cannot find module '{top}' in "
            f"{base} (an untrusted Python agent runs in the sandbox from its own code folder: set 'code_dir', "
            "or register it from the folder that holds the module)")
    return base.resolve()


def find_python_code_dir(module_ref: str, where: Path) -> Path | None:
    """``where`` when it holds ``module_ref``'s top-level module (a package folder or a ``.py`` file), else None."""
    top = module_ref.partition(":")[0].split(".")[0]
    if top and ((where / top).is_dir() or (where / f"{top}.py").is_file()):
        return where.resolve()
    return None


def _sandboxed_python_agent(spec: AgentSpec) -> Any:
    from aob_pipeline.lib.agents import sandbox_bridge
    from aob_pipeline.lib.agents.command import CommandAgent

    code_dir = python_code_dir(spec)
    argv = ["python3", "-s", "-B", sandbox_bridge.BRIDGE_PATH, str(spec.python), str(code_dir)]
    return CommandAgent(spec.agent_id, argv, timeout_s=spec.timeout_s, max_steps=spec.max_steps,
                        runtime="sandbox", sandbox_files={sandbox_bridge.__file__: sandbox_bridge.BRIDGE_PATH},
                        orchestration="single")


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
        from aob_pipeline.lib.agents.llm import ClaudeReActAgent

        return ClaudeReActAgent()

    def claude_agents_as_tools():
        from aob_pipeline.lib.agents.llm import ClaudeAgentsAsToolsAgent

        return ClaudeAgentsAsToolsAgent()

    def claude_plan_execute():
        from aob_pipeline.lib.agents.llm import ClaudePlanExecuteAgent

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
        assert spec.python is not None  # _kind_fields: kind 'python' needs it
        module_name, _, class_name = spec.python.partition(":")
        if not class_name:
            raise AgentRegistryError(f"{spec.source}: agent '{spec.agent_id}': field 'python': expected MODULE:CLASS")
        if effective_runtime(spec) != "trusted":
            return _sandboxed_python_agent(spec)
        try:
            agent = getattr(importlib.import_module(module_name), class_name)()
        except (ImportError, AttributeError) as exc:
            raise AgentRegistryError(f"{spec.source}: agent '{spec.agent_id}': field 'python': {exc}") from exc
    elif spec.kind == "command":
        from aob_pipeline.lib.agents.command import CommandAgent, resolve_argv

        base = Path(spec.source).parent if spec.source else PROJECT_ROOT
        if base == ASSETS_DATA:
            base = PROJECT_ROOT
        assert spec.command is not None  # _kind_fields: kind 'command' needs it
        runtime = effective_runtime(spec)
        # sandbox, container or trusted for a command agent (CommandAgent checks it)
        command_runtime = cast('Literal["process", "sandbox", "container"]', {"trusted": "process"}.get(runtime, runtime))
        agent = CommandAgent(spec.agent_id, resolve_argv(spec.command, base), timeout_s=spec.timeout_s,
                             max_steps=spec.max_steps, protocol=spec.protocol, runtime=command_runtime,
                             image=spec.image)
    elif spec.kind == "llm":
        from aob_pipeline.lib.agents.llm import build_llm_agent

        assert spec.model is not None  # _kind_fields: kind 'llm' needs a model
        try:
            agent = build_llm_agent(spec.model, spec.orchestration, agent_id=spec.agent_id, base_url=spec.base_url,
                                    api_key_env=spec.api_key_env, tool_mode=spec.tool_mode, stream=spec.stream)
        except ValueError as exc:
            raise AgentRegistryError(f"{spec.source}: agent '{spec.agent_id}': {exc}") from exc
    elif spec.kind == "imported":
        raise AgentRegistryError(f"{spec.source}: agent '{spec.agent_id}' is imported: its recorded runs are replayed "
                                 "(aob_pipeline.lib.evaluation.replay_imported_run), it cannot be built or run")
    else:  # fault
        from aob_pipeline.lib.agents.faults import FaultInjectingAgent

        registry = registry or load_agent_registry(include_unavailable=True)
        inner_spec = next((s for s in registry if s.agent_id == spec.inner), None)
        if inner_spec is None:
            raise AgentRegistryError(f"{spec.source}: agent '{spec.agent_id}': field 'inner': unknown agent '{spec.inner}'")
        assert spec.fault is not None  # _kind_fields: kind 'fault' needs it
        agent = FaultInjectingAgent(build_agent(inner_spec, registry), spec.fault, seed=0)
    try:
        agent.agent_id = spec.agent_id
    except AttributeError:
        pass
    return agent
