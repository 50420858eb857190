"""The agent registry: built-ins load, submissions append, bad entries name file, entry and field."""

import pytest

from aob_pipeline.lib.agents.registry import (
    AgentRegistryError,
    AgentSpec,
    add_agent,
    build_agent,
    get_agent_spec,
    load_agent_registry,
    user_registry_path,
)
from aob_pipeline.lib.settings import Settings


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    return Settings(home=tmp_path).ensure()


def test_builtins_are_registered_and_claude_agents_need_a_key(settings, monkeypatch):
    ids = [s.agent_id for s in load_agent_registry(settings)]
    assert {"oracle", "heuristic_single", "heuristic_plan_execute", "do_nothing", "example_command"} <= set(ids)
    assert not any(i.startswith("claude") for i in ids)
    assert any(i.startswith("oracle+") for i in ids)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert "claude_react" in [s.agent_id for s in load_agent_registry(settings)]


def test_add_agent_appends_to_the_user_registry_and_refuses_duplicates(settings):
    path = add_agent(settings, AgentSpec(agent_id="my_agent", kind="command", command=["python3", "agent.py"], trials=2))
    assert path == user_registry_path(settings)
    spec = get_agent_spec("my_agent", settings)
    assert spec.kind == "command" and spec.trials == 2
    with pytest.raises(AgentRegistryError, match="already registered"):
        add_agent(settings, AgentSpec(agent_id="my_agent", kind="python", python="m:C"))
    with pytest.raises(AgentRegistryError, match="already registered"):
        add_agent(settings, AgentSpec(agent_id="oracle", kind="python", python="m:C"))


def test_malformed_entry_names_file_entry_and_field(settings):
    user_registry_path(settings).write_text("agents:\n  - agent_id: ok\n    kind: command\n  - agent_id: 'bad id'\n    kind: python\n    python: m:C\n")
    with pytest.raises(AgentRegistryError) as err:
        load_agent_registry(settings)
    msg = str(err.value)
    assert "agents.yaml" in msg and "entry 1 (ok)" in msg and "command" in msg


def test_invalid_agent_id_is_rejected(settings):
    user_registry_path(settings).write_text("agents:\n  - agent_id: 'a|b'\n    kind: python\n    python: m:C\n")
    with pytest.raises(AgentRegistryError, match=r"entry 1 \(a\|b\): field 'agent_id'"):
        load_agent_registry(settings)


def test_unknown_python_agent_fails_clearly(settings):
    spec = AgentSpec(agent_id="x", kind="python", python="no_such_module_xyz:Agent", source="reg.yaml")
    with pytest.raises(AgentRegistryError, match="field 'python'"):
        build_agent(spec)


def test_builtin_agents_build_with_the_registered_id(settings):
    registry = load_agent_registry(settings)
    for spec in registry:
        agent = build_agent(spec, registry)
        assert agent.agent_id == spec.agent_id
