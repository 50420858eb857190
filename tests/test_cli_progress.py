"""The progress display: the board's arithmetic and lines, the live table, and a real (small) Dagster run followed
through the instance's event stream with its log routed to a file."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import dagster as dg
import pytest

from aob_pipeline.lib.progress import ProgressBoard, format_seconds, runs_detail
from aob_pipeline.lib.settings import PROJECT_ROOT, Settings
from aob_pipeline.runlog import DONE_RE, RUNNING_RE, configure, execute_job, options


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_format_and_detail():
    assert format_seconds(None) == "-:--:--"
    assert format_seconds(3725.4) == "1:02:05"
    assert runs_detail(13, 222, 2886) == "13 agents × 222 scenarios × 1 trial"
    assert runs_detail(1, 5, 15) == "1 agent × 5 scenarios × 3 trials"
    assert runs_detail(2, 5, 13) == "2 agents × 5 scenarios × trials"


def test_plain_lines_count_elapsed_and_remaining():
    clock, out = FakeClock(), io.StringIO()
    board = ProgressBoard(title="t", stream=out, mode="plain", interval=3600, clock=clock)
    board.add_stage("world", "world", total=1)
    board.add_stage("agents", "agents", total=2)
    with board:
        board.start("world")
        clock.now += 5
        board.finish("world")
        board.start("agents")
        board.set_count("agents", done=0, total=200, unit="runs", detail=runs_detail(2, 100, 200))
        clock.now += 10
        board.set_count("agents", done=50)
        lines = board.plain_lines()
        assert lines == ["[0:00:15]  agents: 50/200 runs (25%) (2 agents × 100 scenarios × 1 trial), "
                         "elapsed 0:00:10, ~0:00:30 left"]
        clock.now += 30
        board.set_count("agents", done=200)
        board.finish("agents")
    text = out.getvalue()
    assert "[0:00:05]  world: done, 1/1 steps in 0:00:05" in text
    assert "agents: done, 200/200 runs (2 agents × 100 scenarios × 1 trial) in 0:00:40" in text


def test_plain_mode_prints_a_line_every_interval_while_a_stage_runs():
    out = io.StringIO()
    board = ProgressBoard(stream=out, mode="plain", interval=0.05)
    board.add_stage("world", "world", total=1)
    with board:
        board.start("world")
        time.sleep(0.4)
        board.finish("world")
    beats = [line for line in out.getvalue().splitlines() if "world: 0/1 steps (0%)" in line]
    assert 3 <= len(beats) <= 12, out.getvalue()


def test_stages_left_pending_are_marked_not_run_and_running_ones_failed():
    out = io.StringIO()
    board = ProgressBoard(stream=out, mode="plain", interval=3600)
    board.add_stage("a", "a", total=1)
    board.add_stage("b", "b", total=1)
    with board:
        board.start("a")
    assert board.stages["a"].state == "failed" and board.stages["b"].state == "not run"
    assert "a: FAILED" in out.getvalue()


def test_live_table_renders_marks_bars_counts_and_times():
    from rich.console import Console

    clock = FakeClock()
    board = ProgressBoard(title="aob_demo", stream=io.StringIO(), mode="off", clock=clock)
    board.add_stage("world", "world", total=1)
    board.add_stage("agents", "agents", total=2)
    board.add_stage("judging", "judging", total=7)
    board._t0 = clock.now
    board.start("world")
    clock.now += 12
    board.finish("world")
    board.start("agents")
    board.set_count("agents", done=0, total=2886, unit="runs", detail=runs_detail(13, 222, 2886))
    clock.now += 30
    board.set_count("agents", done=962)
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(board.render())
    text = console.export_text()
    assert "aob_demo — 0:00:42 elapsed" in text
    assert re.search(r"✓ world .* 1/1 steps 0:00:12", text), text
    assert re.search(r"agents .* 962/2,886 runs 0:00:30 ~0:01:00 left 13 agents × 222 scenarios × 1 trial", text), text
    assert re.search(r"· judging .* 0/7 steps", text), text
    # on a narrow terminal only what is counted gives way: marks, counts and times stay whole
    narrow = Console(record=True, width=80, file=io.StringIO())
    narrow.print(board.render())
    lines = narrow.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert re.search(r"✓ world .* 1/1 steps 0:00:12", lines[1]), lines
    assert re.search(r"agents .* 962/2,886 runs 0:00:30 ~0:01:00 left 13 agen.*…$", lines[2].rstrip()), lines
    # a started stage with nothing running now (its checks come after a later stage) waits, without an estimate
    board.set_waiting("agents", True)
    console.print(board.render())
    assert re.search(r"… agents .* 962/2,886 runs 0:00:30 waiting", console.export_text()), console.export_text()
    assert board.plain_lines() == []


def test_the_follower_parses_the_trajectories_assets_own_progress_lines():
    """The regexes match what aob_pipeline/defs/trajectories/assets.py logs (its f-strings, rendered)."""
    source = (PROJECT_ROOT / "aob_pipeline" / "defs" / "trajectories" / "assets.py").read_text()
    running = re.search(r'f"(running \{len\(jobs\)\} trajectories: .*?)"', source).group(1)
    done = re.search(r'f"(\{i\}/\{total\} trajectories done .*?)"', source).group(1)
    rendered_running = running.replace("{len(jobs)}", "2886").replace("{len(agent_ids)}", "13").replace(
        "{len(scenario_ids)}", "222")
    rendered_done = re.sub(r"\{traj\.\w+\}", "x", done.replace("{i}", "288").replace("{total}", "2886"))
    assert RUNNING_RE.search(rendered_running).groups() == ("2886", "13", "222")
    assert DONE_RE.search(rendered_done).groups() == ("288", "2886")


# ------------------------------------------------------------------------------------------- a real run


@dg.asset(group_name="world")
def world_tables():
    print("a stray print from a step")
    return 1


@dg.asset(group_name="evaluation", deps=[world_tables])
def trajectories(context):
    context.log.info("running 20 trajectories: 2 agent(s) × 10 scenario(s)")
    for i in range(1, 21):
        if i % 5 == 0:
            context.log.info(f"{i}/20 trajectories done (a on s: completed)")
    return 2


@dg.asset_check(asset=trajectories)
def every_run_recorded():
    return dg.AssetCheckResult(passed=True)


@dg.asset(group_name="judging", deps=[trajectories])
def judgements():
    raise ValueError("judging broke on run r-1: field 'score' missing\nsecond line of the message")


@dg.asset(group_name="reports", deps=[judgements])
def html_report():
    return 3


@pytest.fixture
def small_job():
    defs = dg.Definitions(assets=[world_tables, trajectories, judgements, html_report],
                          asset_checks=[every_run_recorded],
                          jobs=[dg.define_asset_job("small", dg.AssetSelection.all())])
    return defs.resolve_job_def("small")


@pytest.fixture
def plain_options():
    saved = (options.verbose, options.mode, options.interval)
    configure(verbose=False, mode="plain", interval=3600)
    yield
    configure(verbose=saved[0], mode=saved[1], interval=saved[2])


def test_a_run_is_followed_by_stage_and_its_log_goes_to_a_file(small_job, tmp_path, capfd, plain_options):
    settings = Settings(home=tmp_path / "home")
    echoed: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance:
        result = execute_job(small_job, settings, echoed.append, instance=instance, raise_on_error=False)
    assert not result.success
    out, err = capfd.readouterr()
    log = settings.home / "logs" / f"{result.run_id}.log"
    assert echoed[0] == f"Dagster event log: {log}  (--verbose streams it)"
    text = log.read_text()
    # the event log and the steps' own output are in the file, not on the terminal
    assert "STEP_START" in text and "a stray print from a step" in text and "judging broke" in text
    assert "STEP_START" not in out + err and "a stray print" not in out + err
    # one line per stage as it ends, in the terminal; first Dagster's planning of the run's materialisations
    assert "preparing the run: done, 4/4 planned (asset partitions)" in out
    assert "world: done, 1/1 steps" in out
    assert "agents: done, 20/20 runs (2 agents × 10 scenarios × 1 trial)" in out
    assert "judging: FAILED, 1/1 steps" in out
    assert "reports: FAILED" not in out  # never started: not run
    assert echoed[1] == "  step judgements failed: ValueError: judging broke on run r-1: field 'score' missing"
    assert echoed[2] == f"  (details and traceback: {log})"


def test_verbose_streams_the_event_log(small_job, tmp_path, capfd, plain_options):
    configure(verbose=True)
    settings = Settings(home=tmp_path / "home")
    with dg.DagsterInstance.ephemeral() as instance:
        result = execute_job(small_job, settings, lambda line: None, instance=instance, raise_on_error=False)
    _, err = capfd.readouterr()
    assert "STEP_START" in err and "a stray print from a step" in err
    log = Path(settings.home / "logs" / f"{result.run_id}.log").read_text()
    assert err.count("STEP_START") == log.count("STEP_START")


def test_remaining_time_follows_the_last_minute_not_a_slow_start():
    clock = FakeClock()
    board = ProgressBoard(stream=io.StringIO(), mode="off", clock=clock)
    board.add_stage("agents", "agents", total=200, unit="runs")
    board.start("agents")
    board.set_count("agents", done=0)
    for dt, done in ((100, 10), (70, 80), (10, 90)):  # ten runs in the first 100 s, then one a second
        clock.now += dt
        board.set_count("agents", done=done)
    stage = board.stages["agents"]
    assert stage.remaining(clock.now) == pytest.approx(110.0)  # the whole-stage average would say 220 s


def test_step_stages_estimate_from_the_last_comparable_run(tmp_path, capfd, plain_options):
    from aob_pipeline.runlog import RunFollower, previous_step_seconds

    defs = dg.Definitions(assets=[world_tables, trajectories], asset_checks=[every_run_recorded],
                          jobs=[dg.define_asset_job("ok", dg.AssetSelection.all())])
    job = defs.resolve_job_def("ok")
    with dg.DagsterInstance.ephemeral() as instance:
        assert previous_step_seconds(instance, "ok", None) == {}
        assert execute_job(job, Settings(home=tmp_path), lambda line: None, instance=instance).success
        history = previous_step_seconds(instance, "ok", None)
        assert set(history) == {"world_tables", "trajectories", "trajectories_every_run_recorded"}
        assert all(seconds >= 0 for seconds in history.values())
        # a run with other op config (another scale) is not comparable
        assert previous_step_seconds(instance, "ok", {"ops": {"world_tables": {"config": {"scale": "large"}}}}) == {}

    clock = FakeClock()
    board = ProgressBoard(stream=io.StringIO(), mode="off", clock=clock)
    follower = RunFollower(board, {"a": ("judging", "judging"), "b": ("judging", "judging")}, lambda: ["a", "b"])
    follower.plan()
    follower.ended["judging"] = {"a"}
    board.start("judging")
    follower.use_history({"a": 100.0, "b": 40.0})
    assert board.stages["judging"].remaining(clock.now) == 40.0
    clock.now += 15
    assert board.stages["judging"].remaining(clock.now) == 25.0 and board.remaining() == 25.0


@pytest.mark.parametrize("job_name", ["aob_demo", "evaluate_agents"])
def test_every_step_of_the_projects_jobs_has_a_known_stage(job_name):
    """Each op of the real jobs maps to one of the display's stages (the evaluate job holds source assets,
    which have no op)."""
    from aob_pipeline.definitions import defs
    from aob_pipeline.runlog import STAGE_ORDER, step_stages

    job = defs.resolve_job_def(job_name)
    stages = step_stages(job)
    nodes = {node.name for node in job.graph.nodes}
    assert nodes <= set(stages), nodes - set(stages)
    assert {key for key, _ in stages.values()} <= set(STAGE_ORDER)
    assert stages["trajectories"] == ("agents", "agents") and stages["judgements"][0] == "judging"


def test_steps_of_unlike_length_get_no_estimate_from_their_count():
    clock = FakeClock()
    board = ProgressBoard(stream=io.StringIO(), mode="off", clock=clock)
    board.add_stage("judging", "judging", total=8, rate_estimate=False)
    board.start("judging")
    clock.now += 60
    board.set_count("judging", done=1)
    assert board.stages["judging"].remaining(clock.now) is None  # not 7 × 60 s: the next step may take 1 s
    board.set_expected("judging", 30.0)
    assert board.stages["judging"].remaining(clock.now) == 30.0
