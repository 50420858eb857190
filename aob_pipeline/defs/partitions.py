"""Partitions of the evaluation: agent × scenario, both dynamic.

Agents are registered and submitted over time and scenarios can be imported, so both dimensions are
dynamic partitions that `sync_partitions` (called by `aob demo` and the registry sensor) keeps in step
with the agent registry and the scenario files. Multi-partition keys read ``<agent>|<scenario>``; keys are
ordered agent-major, so "one agent on every scenario" is one contiguous partition range.
"""

from collections.abc import Iterable

import dagster as dg

from aob_pipeline.lib.evaluation import PairBlock, pair_blocks

AGENTS_PARTITIONS = dg.DynamicPartitionsDefinition(name="agents")
SCENARIOS_PARTITIONS = dg.DynamicPartitionsDefinition(name="scenarios")
AGENT_SCENARIO_PARTITIONS = dg.MultiPartitionsDefinition({"agent": AGENTS_PARTITIONS, "scenario": SCENARIOS_PARTITIONS})


def split_partition_key(key: str) -> tuple[str, str]:
    """``'oracle|IOT-001'`` → ``('oracle', 'IOT-001')``."""
    mk = AGENT_SCENARIO_PARTITIONS.get_partition_key_from_str(key)
    return mk.keys_by_dimension["agent"], mk.keys_by_dimension["scenario"]


def partition_key(agent_id: str, scenario_id: str) -> str:
    return dg.MultiPartitionKey({"agent": agent_id, "scenario": scenario_id})


def sync_partitions(instance: dg.DagsterInstance, agent_ids: Iterable[str], scenario_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """Add agents and scenarios the instance does not know yet; return what was added (nothing is removed)."""
    added = []
    for name, wanted in ((AGENTS_PARTITIONS.name, list(agent_ids)), (SCENARIOS_PARTITIONS.name, list(scenario_ids))):
        have = set(instance.get_dynamic_partitions(name))
        new = [k for k in dict.fromkeys(wanted) if k not in have]
        if new:
            instance.add_dynamic_partitions(name, new)
        added.append(new)
    return added[0], added[1]


def range_tags(instance: dg.DagsterInstance, agent_ids: list[str] | None = None) -> dict[str, str]:
    """Run tags selecting every scenario for ``agent_ids`` (all agents when None) as one partition range.

    A run covers one rectangle of agents × scenarios, consecutive in registration order; when the chosen
    agents are not consecutive this raises ``ValueError`` — use ``exact_range_tags``, which splits a
    selection into as many runs as it needs and never runs an agent that was not chosen.
    """
    blocks = exact_range_tags(instance, agent_ids=agent_ids)
    if len(blocks) != 1:
        raise ValueError(f"agents {agent_ids} are not consecutive partitions: {len(blocks)} runs are needed "
                         "(use exact_range_tags)")
    return blocks[0]


def block_tags(block: PairBlock) -> dict[str, str]:
    """The partition-range tags of one rectangle of agent × scenario partitions."""
    return {
        "dagster/asset_partition_range_start": str(partition_key(block.agents[0], block.scenarios[0])),
        "dagster/asset_partition_range_end": str(partition_key(block.agents[-1], block.scenarios[-1])),
    }


def exact_range_tags(instance: dg.DagsterInstance, pairs: Iterable[tuple[str, str]] | None = None,
                     agent_ids: Iterable[str] | None = None) -> list[dict[str, str]]:
    """Run tags for exactly ``pairs`` (or every scenario of ``agent_ids``; everything when both are None):
    one partition range per rectangle of ``pair_blocks``. Running them all materialises those partitions and
    no other — `aob evaluate --agent A --agent B` runs A and B only, whoever was registered between them."""
    agents = instance.get_dynamic_partitions(AGENTS_PARTITIONS.name)
    scenarios = instance.get_dynamic_partitions(SCENARIOS_PARTITIONS.name)
    if not agents or not scenarios:
        raise ValueError("no agent or scenario partitions yet: run sync_partitions first")
    if pairs is None:
        wanted = agents if agent_ids is None else [a for a in dict.fromkeys(agent_ids)]
        unknown = [a for a in wanted if a not in set(agents)]
        if unknown or not wanted:
            raise ValueError(f"not registered agent partition(s): {unknown or 'none chosen'}")
        pairs = [(a, s) for a in wanted for s in scenarios]
    pairs = list(pairs)
    if not pairs:
        return []
    return [block_tags(b) for b in pair_blocks(agents, scenarios, pairs)]


def load_partition_runs(con, partition_keys: list[str]):
    """For a run over agent × scenario partitions: the (agent_id, scenario_id) key frame, the stored
    trajectories of those pairs, and the `scenarios` rows they refer to — read in one short connection."""
    import pandas as pd

    from aob_pipeline.lib.trajectories.store import read_trajectories

    keys = pd.DataFrame([split_partition_key(k) for k in partition_keys], columns=["agent_id", "scenario_id"])
    con.register("__pairs", keys)
    try:
        run_ids = [r[0] for r in con.execute(
            "SELECT t.run_id FROM trajectories t JOIN __pairs p USING (agent_id, scenario_id)").fetchall()]
        scenario_rows = con.execute(
            "SELECT s.* FROM scenarios s JOIN (SELECT DISTINCT scenario_id FROM __pairs) USING (scenario_id)").df()
    finally:
        con.unregister("__pairs")
    trajs = read_trajectories(con, run_ids=run_ids) if run_ids else []
    return keys, trajs, scenario_rows
