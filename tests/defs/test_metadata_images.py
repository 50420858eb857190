"""Plots as images in the Dagster UI: materialising `leaderboard` attaches markdown metadata holding base64 PNGs
(leaderboard and per-criterion rates; the trend from the second run on), and so do `failure_clusters` (the
cluster map) and `failure_distribution` (the agent × failure mode heat map)."""

import base64
import re

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource
from domain_defs import domain_assets

from aob_pipeline.defs.partitions import range_tags, sync_partitions
from aob_pipeline.defs.resources import AobSettingsResource
from aob_pipeline.lib.settings import Settings

failure_assets = domain_assets("failures")
judging_assets = domain_assets("judging")
scenario_assets = domain_assets("scenarios")
trajectory_assets = domain_assets("trajectories")
world_assets = domain_assets("world")

SCENARIOS = ["IOT-001", "FMSR-001"]
CONFIG = {"ops": {"world_tables": {"config": {"scale": "tiny", "seed": 7}},
                  "scenarios": {"config": {"scenario_ids": SCENARIOS}}}}
IMAGE = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def _setup(tmp_path_factory, assets, agents, scenarios):
    home = tmp_path_factory.mktemp("aob_metadata_images")
    settings = Settings(home=home).ensure()
    defs = dg.Definitions(
        assets=assets,
        jobs=[dg.define_asset_job("everything", selection=dg.AssetSelection.all())],
        resources={"duckdb": DuckDBResource(database=str(settings.warehouse_path)),
                   "aob": AobSettingsResource(home=str(home))},
    )
    instance = dg.DagsterInstance.ephemeral()
    sync_partitions(instance, agents)
    result = defs.resolve_job_def("everything").execute_in_process(instance=instance, tags=range_tags(instance),
                                                                   run_config=CONFIG)
    assert result.success
    return defs, instance, result


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    defs, instance, first = _setup(tmp_path_factory, [*world_assets, *scenario_assets, *trajectory_assets,
                                                      *judging_assets], ["oracle", "do_nothing"], SCENARIOS)
    second = defs.resolve_job_def("everything").execute_in_process(
        instance=instance, tags=range_tags(instance), run_config=CONFIG,
        asset_selection=[dg.AssetKey("leaderboard")])
    assert second.success
    return first, second


def _metadata(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return event.step_materialization_data.materialization.metadata


def _png_of(value) -> bytes:
    assert isinstance(value, dg.MarkdownMetadataValue)
    match = IMAGE.fullmatch(value.value)
    assert match, value.value[:80]
    png = base64.b64decode(match.group(1))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return png


def test_leaderboard_metadata_holds_png_images_next_to_the_table(env):
    first, _ = env
    metadata = _metadata(first, "leaderboard")
    assert isinstance(metadata["leaderboard"], dg.MarkdownMetadataValue)  # the existing table stays
    assert metadata["dagster/row_count"].value == 4  # 2 agents x 2 judges (reference, trace_only)
    for key in ("leaderboard_plot", "criteria_plot"):
        assert "data:image/png;base64," in metadata[key].value
        assert len(_png_of(metadata[key])) < 80 * 1024
    assert "trend_plot" not in metadata  # one run on record: no trend yet


def test_judge_agreement_draws_kappa_offline(env):
    # the trace-only judge runs beside the reference judge by default: one pair of judges, six criteria
    first, _ = env
    metadata = _metadata(first, "judge_agreement")
    assert metadata["dagster/row_count"].value == 6
    assert len(_png_of(metadata["kappa_plot"])) < 80 * 1024


def test_the_trend_image_appears_from_the_second_run(env):
    _, second = env
    metadata = _metadata(second, "leaderboard")
    assert {"leaderboard_plot", "criteria_plot", "trend_plot"} <= set(metadata)
    _png_of(metadata["trend_plot"])


@pytest.mark.slow  # embeds the failure texts with the real model
def test_failure_assets_show_the_cluster_map_and_the_heat_map(tmp_path_factory):
    # an agent that ignores tool errors gives additional failure modes to cluster; do_nothing gives MAST ones
    _, _, result = _setup(tmp_path_factory, [*world_assets, *scenario_assets, *trajectory_assets, *failure_assets],
                          ["do_nothing", "oracle+ignored_tool_error"], ["IOT-001", "FMSR-001", "WO-001", "TSFM-001"])
    clusters = _metadata(result, "failure_clusters")
    assert isinstance(clusters["clusters"], dg.MarkdownMetadataValue)  # the existing table stays
    assert len(_png_of(clusters["cluster_map"])) < 80 * 1024
    distribution = _metadata(result, "failure_distribution")
    assert isinstance(distribution["versus_published"], dg.MarkdownMetadataValue)
    assert len(_png_of(distribution["failure_heatmap"])) < 80 * 1024
