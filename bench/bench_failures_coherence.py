"""Benchmark: one reading of a trace — judges and failure detectors on the same field, and the planted faults.

Run:  .venv/bin/python bench/bench_failures_coherence.py WAREHOUSE.duckdb [--agents a,b,...]

Reads the trajectories and scenarios of a warehouse (e.g. ``$AOB_HOME/warehouse/aob.duckdb`` after
``aob demo --scale tiny``; opened read-only), judges every run again with the reference and trace-only judges,
extracts failures with the offline detectors (``OfflineExtractor`` with the judges' scenario view), and prints

- contradictions between the reference judge and the detectors on every shared fact
  (``aob_pipeline.lib.trace.coherence``), in runs;
- the planted faults' sensitivity table per judge (``sensitivity_frame``: pairs, flippable pairs, sensitivity,
  off-target rate, specificity);
- the detectors' recall and precision per planted fault (``failures.validation``) when the field has labels;
- timings (ms per trajectory for judging and extraction).
"""

from __future__ import annotations

import argparse
import time

import duckdb
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse")
    parser.add_argument("--agents", default=None, help="comma-separated agent ids (default: all)")
    args = parser.parse_args()

    from aob_pipeline.lib.failures.detectors import OfflineExtractor
    from aob_pipeline.lib.judging import ReferenceJudge, TraceOnlyJudge, judge_trajectories, sensitivity_frame
    from aob_pipeline.lib.trace import scenario_index
    from aob_pipeline.lib.trace.coherence import coherence_rows, contradictions
    from aob_pipeline.lib.trace.reading import read_trace
    from aob_pipeline.lib.trajectories.store import read_trajectories

    with duckdb.connect(args.warehouse, read_only=True) as con:
        trajs = read_trajectories(con)
        scen = con.execute("SELECT * FROM scenarios").df()
    if args.agents:
        keep = set(args.agents.split(","))
        trajs = [t for t in trajs if t.agent_id in keep]
    index = scenario_index(scen)
    print(f"{len(trajs)} trajectories, {len(index)} scenarios")

    t0 = time.perf_counter()
    ref = judge_trajectories(ReferenceJudge(), trajs, index)
    t1 = time.perf_counter()
    blind = judge_trajectories(TraceOnlyJudge(), trajs, index)
    t2 = time.perf_counter()
    extractor = OfflineExtractor(judge_scenarios=index)
    findings = {t.run_id: extractor.extract(t, index.get(t.scenario_id)) for t in trajs}
    t3 = time.perf_counter()
    n = max(len(trajs), 1)
    print(f"judging: reference {1000 * (t1 - t0) / n:.2f} ms/run, trace_only {1000 * (t2 - t1) / n:.2f} ms/run; "
          f"offline extraction {1000 * (t3 - t2) / n:.2f} ms/run")

    verdicts = ref.set_index("run_id").to_dict("index")
    items, examples = [], {}
    for t in trajs:
        v = verdicts.get(t.run_id)
        if v is None or v.get("judge_error"):
            continue
        f = findings[t.run_id]
        modes = {s for s, on in (f.mast or {}).items() if on} | {m.title for m in f.additional}
        reading = read_trace(t, index.get(t.scenario_id))
        items.append((reading, v, modes))
        for name, why in contradictions(reading, v, modes):
            examples.setdefault(name, (t.run_id, t.agent_id, t.scenario_id, why))
    rows = coherence_rows(items, "reference", "offline")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nreference judge vs offline detectors, per shared fact (contradictions in runs):")
        print(rows[["criterion", "n", "contradictions", "agreement", "rate_a", "rate_b"]].to_string(index=False))
        for name, ex in examples.items():
            print(f"  e.g. {name}: {ex}")
        frame = pd.concat([ref, blind], ignore_index=True)
        sens = sensitivity_frame(frame, trajs)
        print("\nplanted faults (sensitivity on the target criterion):")
        print(sens[["judge", "fault", "target", "n_pairs", "n_flippable", "sensitivity", "off_target_rate",
                    "specificity", "n_unplanted"]].to_string(index=False))


if __name__ == "__main__":
    main()
