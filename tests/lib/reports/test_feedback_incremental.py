"""write_all_feedback: every agent's feedback from the warehouse, rewritten only for agents whose inputs changed,
and always the same files a full rewrite gives."""

import json

import duckdb
import pytest

from aob_pipeline.lib.reports.feedback import build_feedback, render_feedback_markdown
from aob_pipeline.lib.reports.outputs import feedback_dir, write_all_feedback
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.warehouse.incremental import read_agent_state

TABLES = ("scenarios", "trajectories", "trajectory_steps", "judgements", "scores", "leaderboard", "failure_findings",
          "failure_clusters", "failure_cluster_members")


@pytest.fixture()
def settings(tmp_path, frames):
    settings = Settings(home=tmp_path / "home").ensure()
    with duckdb.connect(str(settings.warehouse_path)) as con:
        for name in TABLES:
            con.register("__frame", frames[name])
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM __frame')
            con.unregister("__frame")
    return settings


def _files(settings) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(feedback_dir(settings).iterdir())}


def _mtimes(settings) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in feedback_dir(settings).iterdir()}


def _expected(settings, agent: str) -> tuple[str, dict]:
    """The agent's feedback built the plain way, from every agent's full tables."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        frames = {name: con.execute(f'SELECT * FROM "{name}"').df() for name in TABLES}
    feedback = build_feedback(agent, frames)
    return render_feedback_markdown(feedback), json.loads(json.dumps(feedback, default=str))


def test_first_run_writes_every_agent_as_a_full_build_would(settings):
    result = write_all_feedback(settings)
    assert result.written == ["alpha", "beta", "oracle"] and result.unchanged == []
    files = _files(settings)
    for agent in ("alpha", "beta", "oracle"):
        markdown, feedback = _expected(settings, agent)
        assert files[f"{agent}.md"] == markdown
        assert json.loads(files[f"{agent}.json"]) == feedback
    assert set(read_agent_state(_con(settings), "agent_feedback")) == {"alpha", "beta", "oracle"}


def _con(settings):
    return duckdb.connect(str(settings.warehouse_path), read_only=True)


def test_nothing_changed_writes_nothing(settings):
    write_all_feedback(settings)
    before = _mtimes(settings)
    result = write_all_feedback(settings)
    assert result.written == [] and result.unchanged == ["alpha", "beta", "oracle"]
    assert _mtimes(settings) == before


def test_a_changed_verdict_rewrites_only_that_agent(settings):
    write_all_feedback(settings)
    before = _files(settings)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        run_id = con.execute("SELECT run_id FROM scores s JOIN scenarios USING (scenario_id) WHERE s.agent_id = 'beta' "
                             "AND scenarios.split = 'public' AND score > 0 ORDER BY run_id LIMIT 1").fetchone()[0]
        con.execute("UPDATE scores SET score = 0, passed = false WHERE run_id = ?", [run_id])
    result = write_all_feedback(settings)
    assert result.written == ["beta"]
    after = _files(settings)
    assert after["beta.json"] != before["beta.json"]
    assert {k: v for k, v in after.items() if not k.startswith("beta")} == \
        {k: v for k, v in before.items() if not k.startswith("beta")}
    markdown, feedback = _expected(settings, "beta")
    assert after["beta.md"] == markdown and json.loads(after["beta.json"]) == feedback


def test_a_renamed_cluster_rewrites_the_agents_in_it(settings):
    write_all_feedback(settings)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        in_cluster_2 = {a for (a,) in con.execute(
            "SELECT DISTINCT agent_id FROM failure_cluster_members WHERE cluster_id = 2").fetchall()}
        con.execute("UPDATE failure_clusters SET label = 'Premature Termination' WHERE cluster_id = 2")
    result = write_all_feedback(settings)
    assert set(result.written) == in_cluster_2 and in_cluster_2 and len(result.written) < 3


def test_a_changed_scenario_or_a_missing_file_or_force_rewrites(settings):
    write_all_feedback(settings)
    (feedback_dir(settings) / "alpha.md").unlink()
    assert write_all_feedback(settings).written == ["alpha"]
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("UPDATE scenarios SET split = 'public' WHERE scenario_id = 'SC-010'")
    assert write_all_feedback(settings).written == ["alpha", "beta", "oracle"]
    assert write_all_feedback(settings, force=True).written == ["alpha", "beta", "oracle"]
