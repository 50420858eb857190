"""The ``scenarios`` asset and its checks.

The asset loads the scenario files (``assets_data/scenarios/*.yaml`` plus imported public scenarios),
renders their time placeholders at the world's ``now``, computes every expected answer against the current
warehouse (``aob_pipeline.lib.scenarios.materialize``) and writes the ``scenarios`` table. Its upstreams are
the world tables the answer functions read. The code version is a hash of the scenario files, so editing a
scenario marks the asset stale in the UI.

Checks (pure functions in ``aob_pipeline.lib.scenarios.checks``): ids unique; every scenario has a computable
answer and got one for this world; every gold-plan tool exists with valid arguments; dependencies point at
earlier steps; twins paraphrase existing public scenarios.
"""


import hashlib
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from aob_pipeline.defs.resources import WAREHOUSE_WRITE_POOL
from aob_pipeline.lib.scenarios.checks import (
    CheckOutcome,
    check_answer_specs,
    check_answers_computed,
    check_gold_plan_tools,
    check_ids_unique,
    check_plan_dependencies,
    check_twins,
    scenario_mix,
)
from aob_pipeline.lib.scenarios.loader import load_scenarios, scenario_files
from aob_pipeline.lib.scenarios.materialize import SCENARIOS_TABLE, materialize_scenarios
from aob_pipeline.lib.warehouse import replace_tables, table_exists

SCENARIOS_GROUP = "scenarios"


def _answer_tables() -> list[str]:
    from aob_pipeline.lib.scenarios.answers import tables_read

    return tables_read()


def scenario_files_version() -> str:
    """A short hash of every scenario file's name and bytes (the asset's code version)."""
    h = hashlib.sha256()
    for path in scenario_files():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _outcome_result(outcome: CheckOutcome, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
                    ) -> dg.AssetCheckResult:
    metadata: dict[str, Any] = {k: v for k, v in outcome.metadata.items() if isinstance(v, (int, float, str, bool))}
    if outcome.problems:
        shown = outcome.problems[:50]
        more = len(outcome.problems) - len(shown)
        metadata["problem_list"] = dg.MetadataValue.md(
            "\n".join(f"- {p}" for p in shown) + (f"\n- ... and {more} more" if more else "")
        )
    return dg.AssetCheckResult(passed=outcome.passed, severity=severity, description=outcome.description,
                               metadata=metadata)


class ScenariosConfig(dg.Config):
    """``scenario_ids``: build only these scenarios (a smoke evaluation on a few; default: every scenario of the
    scenario files). Agents run on the scenarios of the table, so this also limits the next evaluation."""

    scenario_ids: list[str] | None = None


@dg.asset(
    name="scenarios",
    group_name=SCENARIOS_GROUP,
    deps=[dg.AssetKey(t) for t in _answer_tables()],
    pool=WAREHOUSE_WRITE_POOL,
    kinds={"duckdb", "yaml"},
    owners=["team:evaluation"],
    code_version=scenario_files_version(),
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in SCENARIOS_TABLE.columns]
        ),
        "dagster/table_name": "aob.main.scenarios",
    },
)
def scenarios(context: dg.AssetExecutionContext, config: ScenariosConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """Evaluation scenarios rendered for the current world, each with its expected answer computed from the
    world by a named answer function (never typed in), its gold plan and metadata (type, split, robustness).
    Agents are evaluated on every scenario of this table."""
    loaded = load_scenarios()
    if config.scenario_ids is not None:
        unknown = sorted(set(config.scenario_ids) - {s.id for s in loaded})
        if unknown:
            raise dg.Failure(f"scenario_ids not in the scenario files: {', '.join(unknown[:10])}")
        wanted = set(config.scenario_ids)
        loaded = [s for s in loaded if s.id in wanted]
    with duckdb.get_connection() as con:
        frame = materialize_scenarios(con, loaded)
        replace_tables(con, {"scenarios": frame}, {"scenarios": SCENARIOS_TABLE})
    curated = frame[frame["source"] == "curated"]
    unanswerable = curated[~curated["answerable"].astype(bool)]
    for row in unanswerable.itertuples():
        context.log.warning("scenario %s has no expected answer in this world: %s", row.scenario_id, row.unanswerable_reason)
    mix = scenario_mix(loaded)
    preview = frame[["scenario_id", "type", "split", "robustness", "answer_format", "expected_answer"]].head(12).copy()
    preview["expected_answer"] = preview["expected_answer"].map(lambda v: (v or "")[:60])
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "answerable": int(frame["answerable"].sum()),
        "unanswerable_curated": len(unanswerable),
        "imported": int((frame["source"] == "imported").sum()),
        "hidden_share": mix["hidden_share"],
        "robustness_share": mix["robustness_share"],
        "mix": dg.MetadataValue.json(mix),
        "answer_seconds_total": round(float(frame["answer_seconds"].fillna(0).sum()), 2),
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
    })


@dg.asset_check(asset=scenarios, name="scenario_ids_unique", blocking=True,
                description="No two scenarios share an id.")
def scenario_ids_unique() -> dg.AssetCheckResult:
    return _outcome_result(check_ids_unique(load_scenarios()))


@dg.asset_check(asset=scenarios, name="every_scenario_has_an_answer", blocking=True, pool=WAREHOUSE_WRITE_POOL,
                description="Every curated scenario names a registered answer function (with an oracle extractor) "
                            "and got an expected answer for the current world.")
def every_scenario_has_an_answer(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    specs = check_answer_specs(load_scenarios())
    with duckdb.get_connection() as con:
        if not table_exists(con, "scenarios"):
            return dg.AssetCheckResult(passed=False, description="the scenarios table does not exist yet")
        frame = con.execute("SELECT scenario_id, source, answerable, unanswerable_reason FROM scenarios").df()
        source = con.execute("SELECT value FROM world_meta WHERE key = 'source'").fetchall() \
            if table_exists(con, "world_meta") else []
    computed = check_answers_computed(frame)
    problems = specs.problems + computed.problems
    imported_world = bool(source) and str(source[0][0]).startswith("import")
    outcome = CheckOutcome("every_scenario_has_an_answer", not problems,
                           computed.description if not specs.problems else specs.description, problems,
                           {**specs.metadata, **computed.metadata, "problems": len(problems)})
    # On an imported (public) world some curated scenarios legitimately lack data: warn instead of failing.
    severity = dg.AssetCheckSeverity.WARN if imported_world and not specs.problems else dg.AssetCheckSeverity.ERROR
    return _outcome_result(outcome, severity)


@dg.asset_check(asset=scenarios, name="gold_plan_tools_valid", blocking=True,
                description="Every gold-plan tool exists, belongs to the step's agent and gets valid arguments.")
def gold_plan_tools_valid() -> dg.AssetCheckResult:
    return _outcome_result(check_gold_plan_tools(load_scenarios()))


@dg.asset_check(asset=scenarios, name="gold_plan_dependencies_valid",
                description="Gold-plan dependencies and references point at earlier steps.")
def gold_plan_dependencies_valid() -> dg.AssetCheckResult:
    return _outcome_result(check_plan_dependencies(load_scenarios()))


@dg.asset_check(asset=scenarios, name="twins_point_at_public_scenarios",
                description="Every hidden twin paraphrases an existing public scenario.")
def twins_point_at_public_scenarios() -> dg.AssetCheckResult:
    return _outcome_result(check_twins(load_scenarios()))
