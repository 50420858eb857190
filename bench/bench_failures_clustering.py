"""Embedding and clustering of 10,000 and 100,000 failure descriptions: seconds and peak memory per stage.

The descriptions are synthetic but shaped like what the TrajFM extractors write: a short title and a one-sentence
description, from 16 failure families (the MAST modes our detectors prove, the emergent modes published upstream,
and the faults the fault-injecting wrapper plants), each with several wordings and slots filled with our assets,
sensors, tools, agents, steps and error codes (see ``FAMILIES``). The text embedded is ``"<title>: <description>"``.

Stages, each timed and with its peak resident memory (VmHWM, reset before the stage through
``/proc/self/clear_refs``; where that is not allowed, the process high-water mark so far) and that peak minus the
resident memory at the stage's start (``+MB``: what the stage itself needed on top of what the process held):

- ``embed (first run)``    ``embed_texts`` on an empty cache folder: model load and every distinct text encoded
- ``embed (second run)``   the same texts in a fresh ``TextEmbedder`` on the same folder (what a new process sees):
                           must encode nothing; cache hits reported
- then the stages of ``cluster_texts`` (see ``aob_pipeline/lib/failures/cluster.py``): ``distinct`` (deduplicate
  vectors), ``neighbours`` (exact k-NN graph), ``reduce`` (UMAP 5-D), ``map`` (UMAP 2-D), ``hdbscan`` (with outlier
  trimming), ``place`` (rows beyond the 20,000-row fit sample), ``stability`` (2 more seeds), ``quality``
  (silhouette), ``kmeans`` (k = 2..7 and silhouettes)
- ``naming (cluster_table)``  c-TF-IDF keywords, centroid-nearest titles
- for the first size only: the 5-D UMAP layout seeded (single-threaded) vs unseeded on both cores

It also reports the ARI between the HDBSCAN clusters and the generating families, and the numba JIT cost: a small
clustering twice in a fresh process (first fit minus second fit = compilation), with an empty and then a warm
``NUMBA_CACHE_DIR``, for ``cluster_texts`` and for plain umap-learn.

    .venv/bin/python bench/bench_failures_clustering.py                       # 10,000 and 100,000
    .venv/bin/python bench/bench_failures_clustering.py --sizes 2000 --skip-jit
    .venv/bin/python bench/bench_failures_clustering.py --jit-only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# ----------------------------------------------------------------------------------------- the texts

ASSETS = [
    "Chiller 6", "Chiller 9", "Chiller 3", "CWC04013", "CWC04009", "CWC04702", "CH-MAIN-01", "CH-MAIN-04",
    "AHU-2", "AHU-5", "AHU-B12", "AHU-MAIN-03", "the north plant chiller", "the rooftop air handler",
]
SENSORS = [
    "Supply Temperature", "Return Temperature", "Condenser Water Flow", "Chiller Efficiency", "Tonnage",
    "Power Input", "Chiller % Loaded", "Liquid Refrigerant Evaporator Temperature", "Setpoint Temperature",
    "Condenser Water Return To Tower Temperature", "Supply Air Temperature", "Mixed Air Temperature",
    "Filter Differential Pressure", "Supply Fan Speed", "Outside Air Damper Position", "Cooling Valve Position",
]
TOOLS = [
    "iot_sensor_history", "iot_list_sensors", "iot_get_asset", "iot_list_assets", "fmsr_list_failure_modes",
    "fmsr_failure_mode_sensors", "fmsr_sensor_metadata", "tsfm_forecast", "tsfm_detect_anomalies",
    "wo_list_events", "wo_code_distribution", "wo_alert_failure_stats", "wo_bundle_corrective",
    "wo_create_work_order", "kb_search_manual",
]
AGENTS = ["IoT agent", "FMSR agent", "TSFM agent", "WO agent", "supervisor", "planner", "ReAct agent"]
ERRORS = ["unknown_sensor", "unknown_asset", "invalid_arguments", "empty_window", "not_enough_data",
          "start_after_end", "internal_error", "unknown_failure_mode", "a timeout"]
PERIODS = ["June 2020", "the last week", "the past 30 days", "Q3 2021", "yesterday", "the last 24 hours",
           "March 2019", "the previous month"]
OUTPUTS = ["a JSON object", "a table", "a single number", "a list of work order ids", "a CSV", "a bullet list",
           "a yes/no answer", "a ranked list"]
FAMILIES: dict[str, dict[str, list[str]]] = {
    "step repetition": {
        "titles": ["Repeated identical tool call", "Step repetition", "Redundant repeated calls to {tool}",
                   "Looping on the same query", "Same {tool} request issued again and again"],
        "descriptions": [
            "The {agent} called {tool} with identical arguments {k} times in a row without using the result.",
            "After step {step} the {agent} kept re-issuing the same {tool} query for {asset}, wasting {k} steps.",
            "The trace shows {k} consecutive identical calls to {tool} for {sensor} on {asset}.",
            "The {agent} looped, requesting {sensor} history for {asset} over {period} {k} times.",
        ],
    },
    "ignored tool error": {
        "titles": ["Tool error never handled", "Lack of error handling for tool failure", "Ignored {error} error",
                   "Unhandled tool failure", "Error from {tool} silently ignored"],
        "descriptions": [
            "{tool} returned {error} at step {step} and the {agent} continued as if it had succeeded.",
            "The {agent} ignored the {error} error from {tool} and never retried or reported it.",
            "At step {step} the call to {tool} for {asset} failed with {error}; the failure was never addressed.",
            "A structured error ({error}) from {tool} was dropped; later steps relied on the missing data.",
        ],
    },
    "ineffective error recovery": {
        "titles": ["Ineffective error recovery", "Failed recovery after tool error", "Retry with the same bad arguments",
                   "Poor recovery from {error}"],
        "descriptions": [
            "After {tool} failed with {error}, the {agent} retried with the same invalid arguments {k} times.",
            "The {agent} tried to recover from {error} by guessing a different asset instead of listing assets.",
            "Recovery after the {error} at step {step} went nowhere: the {agent} switched tools without fixing the sensor name.",
            "When {tool} reported {error} for {sensor}, the {agent} kept changing the time window instead of the sensor.",
        ],
    },
    "overstated completion": {
        "titles": ["Overstatement of task completion", "Claimed success after an error", "False claim of completion",
                   "Reported task done without doing it"],
        "descriptions": [
            "The final answer says the analysis of {asset} is complete although {tool} failed at step {step}.",
            "The {agent} claimed the work order was created, but wo_create_work_order was never called.",
            "The answer states all {sensor} readings for {period} were checked; only part of the window was retrieved.",
            "Success was announced for {asset} while the forecast step ended with {error}.",
        ],
    },
    "output formatting": {
        "titles": ["Extraneous or confusing output formatting", "Output not in the required format",
                   "Wrong answer format", "Answer returned as prose instead of {output}"],
        "descriptions": [
            "The task asked for {output} but the final answer is free text with the numbers buried in it.",
            "The answer mixes markdown, logs and {output}; the required fields are missing.",
            "Instead of {output} the {agent} returned a long narrative about {asset}.",
            "The final output wraps {output} in commentary and uses different field names than requested.",
        ],
    },
    "invalid action format": {
        "titles": ["Invalid action formatting", "Malformed tool call", "Tool arguments not valid JSON",
                   "Wrong argument names for {tool}"],
        "descriptions": [
            "The {agent} emitted a call to {tool} whose arguments were not valid JSON at step {step}.",
            "Arguments to {tool} used the wrong field names, so the call was rejected as invalid_arguments.",
            "The action at step {step} named a tool that does not exist instead of {tool}.",
            "The {agent} passed the sensor list as a string rather than an array to {tool}.",
        ],
    },
    "role violation": {
        "titles": ["Disobey role specification", "Tool called outside the agent's role", "Role violation by {agent}",
                   "Agent acted beyond its responsibilities"],
        "descriptions": [
            "The {agent} called {tool}, which belongs to another domain agent, at step {step}.",
            "Although only the WO agent may create work orders, the {agent} invoked wo_create_work_order for {asset}.",
            "The {agent} answered the forecasting part itself instead of delegating it to the TSFM agent.",
            "At step {step} the {agent} took over the FMSR agent's job and listed failure modes for {asset}.",
        ],
    },
    "ignored agent input": {
        "titles": ["Sub-agent output ignored", "Ignored other agent's input", "Supervisor disregarded {agent} result"],
        "descriptions": [
            "The {agent} returned the {sensor} anomalies for {asset} but the supervisor's answer does not use them.",
            "The supervisor ignored the {agent}'s finding that {sensor} was missing and answered anyway.",
            "The plan step output from the {agent} at step {step} was never referenced by later steps.",
        ],
    },
    "no verification": {
        "titles": ["No verification step", "No or incorrect verification", "Result not checked", "Weak verification"],
        "descriptions": [
            "The {agent} reported the {sensor} trend for {asset} without checking that the data covered {period}.",
            "Nothing in the trace checks the forecast for {asset} against the observed {sensor} values.",
            "The answer was given directly from one {tool} call; no cross-check of the count was made.",
            "The {agent} did not confirm that the work orders returned were for {asset} before summarising.",
        ],
    },
    "premature termination": {
        "titles": ["Premature termination", "Stopped before the task was done", "Gave up early",
                   "Ended without answering every part"],
        "descriptions": [
            "The {agent} stopped after step {step}; the question also asked for the {sensor} forecast.",
            "Only the first of three sub-tasks was done before the {agent} gave its final answer.",
            "The run ended after listing sensors for {asset}; no history for {period} was retrieved.",
            "The {agent} ended the episode once {tool} returned, before computing the requested ranking.",
        ],
    },
    "no clarification": {
        "titles": ["Fail to ask for clarification", "Did not ask for clarification", "Guessed the ambiguous request",
                   "Assumed a missing sensor"],
        "descriptions": [
            "The request did not name the asset; the {agent} picked {asset} without asking which one was meant.",
            "The sensor {sensor} does not exist on {asset}; the {agent} substituted another one instead of asking.",
            "Logs for {asset} conflicted about {period}; the {agent} chose one version silently.",
            "The vague request about the plant was answered for {asset} only, with no question back to the user.",
        ],
    },
    "invented value": {
        "titles": ["Hallucinated sensor value", "Invented value in the answer", "Fabricated reading for {sensor}",
                   "Number not supported by any observation"],
        "descriptions": [
            "The answer gives a {sensor} of {value} for {asset}, a value that appears in no tool observation.",
            "The {agent} reported {value} as the average {sensor} over {period} without retrieving the data.",
            "A failure code and date for {asset} were invented; wo_list_events returned nothing like them.",
            "The final answer cites {k} anomalies on {asset} that tsfm_detect_anomalies never returned.",
        ],
    },
    "wrong retrieval": {
        "titles": ["Wrong asset queried", "Retrieved the wrong time window", "Data retrieval error",
                   "Queried {sensor} instead of the requested sensor"],
        "descriptions": [
            "The question was about {asset} but {tool} was called for a different chiller.",
            "The {agent} fetched {sensor} for {period} although the task asked for another period.",
            "Sensor history was requested for the wrong site, so the answer describes another building.",
            "The {agent} used the setpoint instead of the measured {sensor} for {asset}.",
        ],
    },
    "feedback not incorporated": {
        "titles": ["Failure to incorporate feedback", "Ignored the validator's feedback", "Repeated the rejected answer"],
        "descriptions": [
            "The checker rejected the first answer for missing {sensor}; the {agent} resubmitted it unchanged.",
            "After feedback that {output} was required, the {agent} returned the same prose again.",
            "The reviewer flagged the wrong asset {asset}, but the next attempt used it again.",
        ],
    },
    "task derailment": {
        "titles": ["Task derailment", "Drifted away from the question", "Answered a different question"],
        "descriptions": [
            "Asked for {sensor} anomalies on {asset}, the {agent} produced a maintenance plan for the whole site.",
            "The {agent} spent {k} steps exploring failure modes unrelated to the requested work-order summary.",
            "The answer discusses energy efficiency of {asset} instead of the requested alert statistics.",
        ],
    },
    "action reasoning mismatch": {
        "titles": ["Action-reasoning mismatch", "Action contradicts stated plan", "Thought and tool call disagree"],
        "descriptions": [
            "The {agent} wrote that it would check {sensor} but then called {tool} for work orders.",
            "The reasoning at step {step} concluded to forecast {asset}, yet the action listed sites.",
            "The plan said to verify the anomaly count; the next action created a work order instead.",
        ],
    },
}
"""Failure family → title and description templates (slots: agent, tool, asset, sensor, error, step, k, period, output, value)."""


def synthetic_failures(n: int, seed: int = 0) -> tuple[list[str], list[str], np.ndarray]:
    """``n`` synthetic failures: (titles, texts to embed, family index per failure), reproducible by ``seed``."""
    rng = np.random.default_rng(seed)
    names = list(FAMILIES)
    weights = rng.dirichlet(np.full(len(names), 4.0))  # uneven family sizes, as in real traces
    family = rng.choice(len(names), size=n, p=weights)
    pools = {"agent": AGENTS, "tool": TOOLS, "asset": ASSETS, "sensor": SENSORS, "error": ERRORS,
             "period": PERIODS, "output": OUTPUTS}
    draws = {slot: rng.integers(0, len(pool), n) for slot, pool in pools.items()}
    steps, repeats, values = rng.integers(1, 31, n), rng.integers(2, 9, n), rng.uniform(0.3, 95.0, n)
    title_pick, text_pick = rng.integers(0, 1_000_000, n), rng.integers(0, 1_000_000, n)
    titles, texts = [], []
    for i in range(n):
        fam = FAMILIES[names[family[i]]]
        slots = {slot: pools[slot][draws[slot][i]] for slot in pools}
        slots.update(step=int(steps[i]), k=int(repeats[i]), value=f"{values[i]:.1f}")
        title = fam["titles"][title_pick[i] % len(fam["titles"])].format(**slots)
        description = fam["descriptions"][text_pick[i] % len(fam["descriptions"])].format(**slots)
        titles.append(title)
        texts.append(f"{title}: {description}")
    return titles, texts, family


# ----------------------------------------------------------------------------------------- measuring


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@dataclass
class StageFigure:
    size: int
    stage: str
    seconds: float
    peak_mb: float
    start_mb: float
    note: str = ""


class Meter:
    """Seconds and peak resident memory (VmHWM) of each stage; ``measure(name)`` is a context manager."""

    def __init__(self, size: int):
        self.size = size
        self.figures: list[StageFigure] = []

    def measure(self, name: str):
        meter = self

        class _Stage:
            def __enter__(self):
                self.start_mb = _status_mb("VmRSS")
                self.reset = _reset_peak()
                self.start = time.perf_counter()
                return self

            def __exit__(self, *exc):
                seconds = time.perf_counter() - self.start
                note = "" if self.reset else "process peak so far"
                peak = _status_mb("VmHWM")
                meter.figures.append(StageFigure(meter.size, name, seconds, peak, self.start_mb, note))
                print(f"  {meter.size:>7,}  {name:<28} {seconds:9.1f} s  peak RSS {peak:7.0f} MB "
                      f"(+{peak - self.start_mb:.0f} over the {self.start_mb:.0f} MB at start)  load {os.getloadavg()[0]:.1f}",
                      flush=True)
                return False

        return _Stage()


def run_size(n: int, seed: int, workdir: Path, compare_parallel: bool) -> tuple[list[StageFigure], dict[str, Any]]:
    from sklearn.metrics import adjusted_rand_score

    from aob_pipeline.lib.embeddings import TextEmbedder, embed_texts
    from aob_pipeline.lib.failures.cluster import cluster_texts
    from aob_pipeline.lib.failures.naming import cluster_table
    from aob_pipeline.lib.settings import Settings

    meter = Meter(n)
    titles, texts, family = synthetic_failures(n, seed)
    settings = Settings(home=workdir / f"home-{n}")
    facts: dict[str, Any] = {"rows": n, "distinct texts": len(set(texts))}
    print(f"\n{n:,} failures ({facts['distinct texts']:,} distinct texts), cache under {settings.cache_dir}", flush=True)

    with meter.measure("embed (first run)"):
        embeddings = embed_texts(texts, settings)
    second = TextEmbedder(settings.cache_dir)  # a new process's view: nothing in memory, the Parquet cache on disk
    with meter.measure("embed (second run)"):
        again = second.embed(texts)
    assert np.array_equal(embeddings, again), "the cache returned different vectors"
    facts["second run: texts encoded"] = second.texts_encoded
    facts["second run: model calls"] = second.model_invocations
    facts["second run: cache hits"] = facts["distinct texts"] - second.texts_encoded

    result = cluster_texts(embeddings, stage=meter.measure)
    with meter.measure("naming (cluster_table)"):
        table = cluster_table(titles, embeddings, result.labels, result.map_coordinates, documents=texts,
                              stability=result.cluster_stability)
    q = result.quality
    facts.update({
        "clusters": q.n_clusters, "noise share": q.noise_share, "rows clustered directly": q.n_fit_points,
        "silhouette (5-D)": q.silhouette, "stability ARI (2 seeds)": q.stability_ari,
        "K-Means k": q.kmeans_k, "K-Means silhouette": q.kmeans_silhouette,
        "ARI HDBSCAN vs K-Means": q.hdbscan_vs_kmeans_ari,
        "ARI HDBSCAN vs families": round(adjusted_rand_score(family, result.labels), 4),
        "ARI K-Means vs families": round(adjusted_rand_score(family, result.kmeans.labels), 4),
        "largest clusters": "; ".join(f"{r.label} [{r.keywords}]" for r in table[table.cluster_id >= 0].head(3).itertuples()),
    })
    if compare_parallel:
        facts.update(_parallel_layout_comparison(embeddings, meter))
    return meter.figures, facts


def _parallel_layout_comparison(embeddings: np.ndarray, meter: Meter) -> dict[str, Any]:
    """The 5-D UMAP layout seeded (single-threaded, reproducible) vs unseeded with both cores (not reproducible)."""
    import umap

    from aob_pipeline.lib.failures.cluster import DEFAULT_MAX_FIT_POINTS, _Neighbours, enable_umap_numba_cache

    enable_umap_numba_cache()
    vectors = np.unique(embeddings[:DEFAULT_MAX_FIT_POINTS], axis=0)
    neighbours = _Neighbours(vectors, 15)
    knn = (neighbours.indices, neighbours.distances, None)
    out = {}
    for label, kwargs in (("seeded, n_jobs=1", {"random_state": 42, "n_jobs": 1}),
                          ("unseeded, n_jobs=2", {"random_state": None, "n_jobs": 2})):
        start = time.perf_counter()
        with meter.measure(f"UMAP 5-D {label}"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                umap.UMAP(n_components=5, n_neighbors=15, min_dist=0.0, metric="cosine", precomputed_knn=knn,
                          **kwargs).fit_transform(vectors)
        out[f"UMAP 5-D layout {label} (s)"] = round(time.perf_counter() - start, 1)
    return out


JIT_SCRIPT = r"""
import sys, time
import numpy as np
mode = sys.argv[1]
start = time.perf_counter()
import sklearn.cluster, torch, umap  # imports timed apart from the fits
from aob_pipeline.lib.failures.cluster import cluster_texts
imported = time.perf_counter()
rng = np.random.default_rng(0)
x = np.concatenate([c + 0.1 * rng.normal(size=(150, 384)) for c in rng.normal(size=(2, 384))]).astype(np.float32)
fits = []
for _ in range(2):
    t = time.perf_counter()
    if mode == "cluster_texts":
        cluster_texts(x, stability_runs=0, kmeans_ks=())
    else:
        umap.UMAP(n_components=5, random_state=42, n_jobs=1).fit_transform(x)
    fits.append(time.perf_counter() - t)
print(f"{imported - start:.1f} {fits[0]:.1f} {fits[1]:.1f}")
"""


def jit_figures() -> list[tuple[str, str, float, float, float]]:
    """Fresh processes with an empty, then a warm NUMBA_CACHE_DIR: import, first-fit and second-fit seconds.

    The first fit minus the second is what numba compiles in that process. ``cluster_texts`` switches numba caching
    on for umap's functions (``enable_umap_numba_cache``); plain umap-learn does not, for comparison.
    """
    rows = []
    for mode in ("cluster_texts", "plain umap-learn"):
        with tempfile.TemporaryDirectory(prefix="aob-numba-bench-") as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            for run in ("empty cache", "warm cache"):
                out = subprocess.run([sys.executable, "-c", JIT_SCRIPT, "cluster_texts" if mode == "cluster_texts" else "umap"],
                                     env=env, capture_output=True, text=True, check=True)
                imported, first, second = (float(v) for v in out.stdout.split()[-3:])
                rows.append((mode, run, imported, first, second))
                print(f"  JIT  {mode:<18} {run:<12} imports {imported:6.1f} s   first fit {first:6.1f} s   "
                      f"second fit {second:6.1f} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-jit", action="store_true", help="skip the numba cache measurement")
    parser.add_argument("--jit-only", action="store_true", help="only the numba cache measurement")
    parser.add_argument("--workdir", type=Path, default=None, help="where the embedding caches go (default: a temp dir)")
    args = parser.parse_args(argv)

    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    jit = [] if args.skip_jit else jit_figures()
    if args.jit_only:
        args.sizes = []
    all_figures: list[StageFigure] = []
    all_facts: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aob-trajfm-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for i, n in enumerate(args.sizes):
            figures, facts = run_size(n, args.seed, workdir, compare_parallel=(i == 0))
            all_figures += figures
            all_facts.append(facts)

    if all_figures:
        print_figures(all_figures, all_facts)
    if jit:
        print("\n## numba JIT: fresh process, empty vs warm NUMBA_CACHE_DIR (seconds)")
        for mode, run, imported, first, second in jit:
            print(f"  {mode:<18} {run:<12} imports {imported:6.1f}   first fit {first:6.1f}   second fit {second:6.1f}")
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


def print_figures(all_figures: list[StageFigure], all_facts: list[dict[str, Any]]) -> None:
    print("\n## Seconds and peak resident memory per stage")
    print(f"{'rows':>8}  {'stage':<30} {'seconds':>9} {'peak MB':>9} {'+MB':>7}")
    for f in all_figures:
        print(f"{f.size:>8,}  {f.stage:<30} {f.seconds:9.1f} {f.peak_mb:9.0f} {f.peak_mb - f.start_mb:7.0f}  {f.note}")
    print("\n## Results")
    for facts in all_facts:
        for key, value in facts.items():
            print(f"  {facts['rows']:>8,}  {key:<34} {value}")


if __name__ == "__main__":
    main()
