"""The curated scenario set in assets_data/scenarios: size, mix, and static checks."""

from collections import Counter

import pytest

from aob_pipeline.lib.agents.oracle import EXTRACTORS
from aob_pipeline.lib.scenarios.answers import ANSWER_FUNCTIONS
from aob_pipeline.lib.scenarios.checks import run_static_checks, scenario_mix
from aob_pipeline.lib.scenarios.loader import load_scenarios


@pytest.fixture(scope="module")
def curated():
    return load_scenarios(include_imported=False)


def test_size_and_mix(curated):
    mix = scenario_mix(curated)
    assert mix["total"] >= 150
    assert 0.25 <= mix["hidden_share"] <= 0.30, mix
    assert 0.18 <= mix["robustness_share"] <= 0.25, mix
    assert set(mix["by_type"]) == {"IoT", "FMSR", "TSFM", "WO", "multi-agent"}
    assert set(mix["by_robustness"]) == {"none", "missing_sensor", "conflicting_logs", "vague_request"}
    assert mix["twins"] >= 30
    for kind, n in mix["by_robustness"].items():
        assert n >= 10, kind


def test_every_static_check_passes(curated):
    for outcome in run_static_checks(curated):
        assert outcome.passed, f"{outcome.name}: {outcome.problems[:10]}"


def test_every_answer_function_has_an_oracle_extractor_and_is_used():
    assert set(EXTRACTORS) == set(ANSWER_FUNCTIONS)


def test_task_families_are_covered(curated):
    functions = Counter(s.answer.function for s in curated)
    for family in ("telemetry_stat", "anomaly_count", "forecast_stat", "failure_mode_sensor_set", "work_order_count",
                   "corrective_bundles", "likely_next_codes", "alert_followup_stats", "anomaly_work_order_decision",
                   "rank_assets_by_work_orders", "event_summary", "manual_section_for_failure_mode"):
        assert functions[family], family
    asking = [s for s in curated if s.operator_reply]
    assert len(asking) >= 15
    assert all(s.answer.format == "clarification" for s in curated if s.robustness != "none")
