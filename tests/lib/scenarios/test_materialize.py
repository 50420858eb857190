"""Expected answers computed on the generated tiny world, checked against plain pandas, and the table round trip.

A few answers are recomputed here from the world frames with plain pandas, so a wrong answer function
fails even where the oracle (a different code path through the tools) would agree with it by accident.
That every curated scenario is answerable at tiny is asserted scenario by scenario in the oracle test.
"""

import json

import pandas as pd
import pytest

from aob_pipeline.lib.scenarios.answers import AnswerError, compute_answer
from aob_pipeline.lib.scenarios.loader import load_scenarios
from aob_pipeline.lib.scenarios.materialize import SCENARIOS_TABLE, materialize_scenarios, scenario_from_row
from aob_pipeline.lib.scenarios.model import AnswerSpec
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.warehouse import connect, replace_tables
from aob_pipeline.lib.world.schema import WORLD_TABLES
from aob_pipeline.lib.world.store import store_world


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from aob_pipeline.lib.world.generate import generate_world

    settings = Settings(home=tmp_path_factory.mktemp("scenarios_tiny"))
    store_world(settings, generate_world(scale="tiny", seed=7))
    with connect(settings.warehouse_path) as con:
        frames = {t: con.execute(f'SELECT * FROM "{t}"').df() for t in WORLD_TABLES}
        chosen = [sc for sc in load_scenarios(include_imported=False) if sc.id in SAMPLE]
        table = materialize_scenarios(con, chosen)
    return settings, frames, table


SAMPLE = {"IOT-001", "IOT-002", "IOT-016", "IOT-031", "WO-001", "WO-002", "WO-020", "FMSR-006", "TSFM-005",
          "TSFM-013", "MA-002", "MA-007", "ROB-002", "ROB-012", "ROB-023", "IOT-105"}


def row(table, sid):
    return table.set_index("scenario_id").loc[sid]


def test_sampled_scenarios_are_answerable_and_rendered(tiny):
    _, _, table = tiny
    assert set(table["scenario_id"]) == SAMPLE
    bad = table[~table["answerable"]]
    assert bad.empty, bad[["scenario_id", "unanswerable_reason"]].to_string()
    assert table["scenario_id"].is_unique
    assert not table["text"].str.contains(r"\{(?:now|today|telemetry_start)").any()
    for value in table["expected_answer"]:
        json.loads(value)


def test_answers_agree_with_plain_pandas(tiny):
    _, frames, table = tiny
    now = pd.Timestamp(frames["world_meta"].set_index("key").loc["now", "value"])
    today = now.normalize()
    tel = frames["telemetry"]
    sel = tel[(tel.asset_id == "CWC04006") & (tel.sensor == "Supply Temperature")
              & (tel.ts >= today - pd.Timedelta(days=1)) & (tel.ts < today)]
    assert json.loads(row(table, "IOT-016")["expected_answer"]) == pytest.approx(sel["value"].mean(), abs=1e-9)

    wo = frames["work_orders"]
    assert json.loads(row(table, "WO-001")["expected_answer"]) == int((wo.asset_id == "CWC04006").sum())
    recent = wo[(wo.asset_id == "CWC04009") & ~wo.preventive & (wo.finished_at >= today - pd.Timedelta(days=365))
                & (wo.finished_at < today)]
    assert json.loads(row(table, "WO-002")["expected_answer"]) == len(recent)

    fms = frames["failure_mode_sensors"]
    assert json.loads(row(table, "FMSR-006")["expected_answer"]) == sorted(fms[fms.failure_mode_id == "FM-CH-03"].sensor)
    assert json.loads(row(table, "IOT-001")["expected_answer"]) == sorted(frames["sites"].site_id)
    aliases = json.loads(row(table, "IOT-002")["answer_aliases"])
    assert aliases["CWC04006"] == ["Chiller 6"]


def test_robustness_answers_describe_the_behaviour(tiny):
    _, _, table = tiny
    missing = json.loads(row(table, "ROB-002")["expected_answer"])
    assert missing["behaviour"] == "state_missing" and missing["must_mention"] == ["Vibration"]
    assert missing["final_format"] == "number" and isinstance(missing["final"], float)
    vague = json.loads(row(table, "ROB-012")["expected_answer"])
    assert vague["behaviour"] == "ask_clarification" and row(table, "ROB-012")["operator_reply"]
    conflict = json.loads(row(table, "ROB-023")["expected_answer"])
    assert conflict["behaviour"] == "note_conflict" and "conflict" in conflict["must_mention"][0]


def test_a_sensor_that_exists_is_not_a_missing_sensor_case(tiny):
    settings, _, _ = tiny
    spec = AnswerSpec(function="clarify_missing_sensor", params={"asset": "Chiller 6", "sensor": "Tonnage"},
                      format="clarification")
    with connect(settings.warehouse_path, read_only=True) as con, pytest.raises(AnswerError, match="does carry"):
        compute_answer(con, spec)


def test_the_table_round_trips(tiny):
    settings, frames, table = tiny
    meta = frames["world_meta"].set_index("key")["value"]
    with connect(settings.warehouse_path) as con:
        counts = replace_tables(con, {"scenarios": table}, {"scenarios": SCENARIOS_TABLE})
        stored = con.execute("SELECT * FROM scenarios ORDER BY scenario_id").df()
    assert counts["scenarios"] == len(table)
    originals = {s.id: s for s in load_scenarios(include_imported=False)}
    assert len(stored) == len(SAMPLE)
    for record in stored.to_dict("records"):
        rebuilt = scenario_from_row(record)
        expected = originals[record["scenario_id"]].render(meta["now"], meta["telemetry_start"])
        assert (rebuilt.text, rebuilt.gold_plan, rebuilt.sub_agents, rebuilt.operator_reply) == \
            (expected.text, expected.gold_plan, expected.sub_agents, expected.operator_reply)
        assert (rebuilt.answer.function, rebuilt.answer.params, rebuilt.answer.format) == \
            (expected.answer.function, expected.answer.params, expected.answer.format)
