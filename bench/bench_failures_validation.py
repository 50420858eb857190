"""TrajFM validation: precision and recall of the failure extractors on trajectories with planted faults.

Builds a world (``generate_world(scale)`` stored into a temporary ``AOB_HOME``), renders the scenarios
(``materialize_scenarios`` → ``scenario_from_row``, answerable ones), runs the clean agents (``--inner``, default
``oracle``) and each of them wrapped with every fault of ``aob_pipeline.lib.agents.faults`` (``<inner>+<fault>``;
the oracle's are the registered ``oracle+<fault>`` agents of ``assets_data/agents.yaml``) through
``plan_jobs`` / ``run_evaluations``, then runs the offline extractor on every trajectory and prints:

- how many runs each agent made and how many faults were planted (a fault the wrapper could not plant in a run
  is labelled ``planted: false`` and does not count as a positive);
- the precision / recall table per planted fault (``validation.extractor_scores``; the mapping of faults to
  expected findings is documented in ``aob_pipeline/lib/failures/validation.py``), with the baseline rate: the
  share of clean runs already flagged for that finding;
- our additional-mode shares beside the published emergent-mode shares (``distribution.compare_with_published``);
- timings: world, scenarios, agent runs, extraction (ms per trajectory).

``--llm MODEL`` also runs the LLM extractor (needs ``ANTHROPIC_API_KEY`` or a warm LLM cache under ``--home``).
``skipped_verification`` needs an inner agent with a verification phase: the oracle (through its adapter) and the
heuristic agents re-read the last data their answer rests on.

    .venv/bin/python bench/bench_failures_validation.py
    .venv/bin/python bench/bench_failures_validation.py --inner oracle,heuristic_single --scenarios 60
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _fault_module():
    try:
        from aob_pipeline.lib.agents import faults
    except ImportError as exc:
        raise SystemExit(
            "bench_failures_validation: the fault-injecting wrapper (aob_pipeline.lib.agents.faults) is not "
            f"importable ({exc}); it is needed to plant labelled faults. Nothing was measured."
        ) from None
    return faults


def print_cluster_recovery(frame, planted, timings: dict) -> None:
    """Embed the additional-mode texts, cluster them (UMAP + HDBSCAN, fixed seed) and print the ARI between
    clusters and planted faults (runs with exactly one planted fault)."""
    import time

    import numpy as np
    import pandas as pd

    from aob_pipeline.lib.embeddings import embed_texts
    from aob_pipeline.lib.failures.cluster import cluster_texts
    from aob_pipeline.lib.failures.validation import cluster_recovery

    extra = frame[frame["kind"] == "additional"].copy()
    if extra.empty:
        print("  no additional failure modes to cluster")
        return
    extra["text"] = extra["title"].astype(str) + ": " + extra["description"].fillna("").astype(str)
    t0 = time.perf_counter()
    vectors = embed_texts(extra["text"].tolist())
    result = cluster_texts(np.asarray(vectors), seed=42)
    timings["embed + cluster additional modes"] = time.perf_counter() - t0
    clusters = pd.DataFrame({"run_id": extra["run_id"].values, "title": extra["title"].values,
                             "extractor": extra["extractor"].values, "cluster_id": result.labels})
    rec = cluster_recovery(frame, clusters, planted)
    print(f"  rows {rec.rows}, fault families {rec.families}, clusters {rec.clusters}, "
          f"noise share {rec.noise_share if rec.noise_share is None else round(rec.noise_share, 3)}")
    print(f"  ARI (noise as singletons) {rec.ari if rec.ari is None else round(rec.ari, 3)}; "
          f"ARI without noise {rec.ari_without_noise if rec.ari_without_noise is None else round(rec.ari_without_noise, 3)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="tiny", help="world scale (default tiny)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--inner", default="oracle", help="comma-separated clean agents to wrap (default oracle)")
    parser.add_argument("--scenarios", type=int, default=0, help="use only the first N answerable scenarios (0: all)")
    parser.add_argument("--concurrency", type=int, default=4, help="agent runs in parallel")
    parser.add_argument("--home", default=None, help="AOB_HOME to use (default: a new temporary folder)")
    parser.add_argument("--llm", default=None, metavar="MODEL", help="also run the LLM extractor with this model")
    args = parser.parse_args(argv)

    faults = _fault_module()
    if args.home:
        return _run(args, faults, Path(args.home))
    with tempfile.TemporaryDirectory(prefix="aob-bench-trajfm-") as home:
        return _run(args, faults, Path(home))


def _run(args: argparse.Namespace, faults, home: Path) -> int:
    os.environ["AOB_HOME"] = str(home)

    from aob_pipeline.lib.agents.registry import AgentSpec, load_agent_registry
    from aob_pipeline.lib.evaluation import plan_jobs, run_evaluations
    from aob_pipeline.lib.failures.detectors import OfflineExtractor
    from aob_pipeline.lib.failures.distribution import compare_with_published, format_comparison
    from aob_pipeline.lib.failures.findings import extract_findings, findings_frame
    from aob_pipeline.lib.failures.validation import extractor_scores, format_scores, planted_faults_frame
    from aob_pipeline.lib.scenarios.materialize import materialize_scenarios, scenario_from_row
    from aob_pipeline.lib.settings import Settings
    from aob_pipeline.lib.tools.base import ToolContext
    from aob_pipeline.lib.warehouse import connect
    from aob_pipeline.lib.world.generate import generate_world
    from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

    timings: dict[str, float] = {}
    settings = Settings.from_env().ensure()
    t0 = time.perf_counter()
    store_world(settings, generate_world(args.scale, seed=args.seed))
    timings["world (generate + store)"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with connect(settings.warehouse_path, read_only=True) as con:
        rows = materialize_scenarios(con)
    scenarios = [scenario_from_row(r) for r in rows.to_dict("records") if r["answerable"]]
    if args.scenarios:
        scenarios = scenarios[: args.scenarios]
    timings["scenarios (render + expected answers)"] = time.perf_counter() - t0
    if not scenarios:
        raise SystemExit("bench_failures_validation: no answerable scenario in this world")

    registry = load_agent_registry(settings)
    by_id = {s.agent_id: s for s in registry}
    specs = []
    for inner in [a.strip() for a in args.inner.split(",") if a.strip()]:
        if inner not in by_id:
            raise SystemExit(f"bench_failures_validation: --inner {inner!r} is not a registered agent "
                             f"({', '.join(sorted(by_id))})")
        specs.append(by_id[inner])
        for fault in faults.FAULT_NAMES:
            agent_id = f"{inner}+{fault}"
            specs.append(by_id.get(agent_id) or AgentSpec(agent_id=agent_id, kind="fault", inner=inner, fault=fault,
                                                           source="bench_failures_validation"))
    registry = registry + [s for s in specs if s.agent_id not in by_id]

    ctx = ToolContext(world_snapshot_dir(settings))
    jobs = plan_jobs(specs, scenarios, trials=1)
    t0 = time.perf_counter()
    trajectories = run_evaluations(jobs, ctx, registry, concurrency=args.concurrency)
    timings[f"agent runs ({len(jobs)})"] = time.perf_counter() - t0

    scenario_of = {s.id: s for s in scenarios}
    extractors = [OfflineExtractor()]
    if args.llm:
        from aob_pipeline.lib.failures.llm_extractor import LLMExtractor
        from aob_pipeline.lib.llm import LLMClient

        extractors.append(LLMExtractor(LLMClient.from_settings(settings), args.llm))
    t0 = time.perf_counter()
    findings = extract_findings(extractors[:1], trajectories, scenario_of)
    offline_s = time.perf_counter() - t0
    timings[f"offline extraction ({len(trajectories)} trajectories)"] = offline_s
    if len(extractors) > 1:
        t0 = time.perf_counter()
        findings += extract_findings(extractors[1:], trajectories, scenario_of, concurrency=4)
        timings[f"LLM extraction ({len(trajectories)} trajectories)"] = time.perf_counter() - t0

    frame = findings_frame(findings)
    planted = planted_faults_frame(trajectories)
    scores = extractor_scores(frame, planted)

    where = f"AOB_HOME={home}" if args.home else "a temporary AOB_HOME"
    print(f"world: {args.scale} (seed {args.seed}); scenarios: {len(scenarios)} answerable; {where}")
    print("\nruns per agent (status; faults planted / not plantable):")
    per_agent: dict[str, dict[str, int]] = {}
    for t, p in zip(trajectories, planted.to_dict("records")):
        d = per_agent.setdefault(t.agent_id, {"runs": 0, "completed": 0, "planted": 0, "not_planted": 0})
        d["runs"] += 1
        d["completed"] += t.status == "completed"
        d["planted"] += bool(p["planted"])
        d["not_planted"] += bool(p["not_planted"])
    for agent_id, d in per_agent.items():
        print(f"  {agent_id:<40} runs {d['runs']:>4}  completed {d['completed']:>4}  planted {d['planted']:>4}  "
              f"not plantable {d['not_planted']:>4}")
    rejected = sum(f.evidence_rejections for f in findings)
    errors = sum(1 for f in findings if f.extraction_error)
    print(f"\nfindings: {len(findings)}; evidence rejections: {rejected}; extraction errors: {errors}")
    print("\nprecision / recall per planted fault (clean% = share of clean runs flagged for the same finding):")
    print(format_scores(scores))
    print("\nadditional failure modes beside the published emergent-mode shares:")
    print(format_comparison(compare_with_published(frame)))
    print("\nhow well failure clusters recover the planted fault families:")
    print_cluster_recovery(frame, planted, timings)
    print("\ntimings:")
    for name, seconds in timings.items():
        print(f"  {name:<52} {seconds:8.2f} s")
    print(f"  {'offline extraction per trajectory':<52} {1000 * offline_s / max(1, len(trajectories)):8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
