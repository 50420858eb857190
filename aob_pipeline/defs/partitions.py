"""Partitions of the evaluation: one per agent (dynamic), every scenario inside it.

Agents are registered and submitted over time, so they are dynamic partitions that `sync_partitions` (called by
`aob demo`, `aob evaluate`, the registry sensor and the nightly schedule) keeps in step with the agent registry.
Scenarios are rows inside an agent's partition, not a partition dimension: Dagster records an event per
materialised partition (about 8 ms each on the default SQLite instance), so agent × scenario partitions cost
three events per trajectory — 8,658 for the default demo, 200,000 for a field of 300 agents — where agent
partitions cost three per agent. Which scenarios of an agent actually run is decided inside the run: every scenario
of the `scenarios` table, or only the stale ones (`TrajectoriesConfig.skip_unchanged`, what the nightly run sets),
from the input fingerprints in `trajectory_inputs`.
"""

from collections.abc import Iterable, Sequence

import dagster as dg

AGENTS_PARTITIONS_NAME = "agents"
AGENTS_PARTITIONS = dg.DynamicPartitionsDefinition(name=AGENTS_PARTITIONS_NAME)


def sync_partitions(instance: dg.DagsterInstance, agent_ids: Iterable[str]) -> list[str]:
    """Add the agents the instance does not know yet, in the order given; return them (nothing is removed)."""
    have = set(instance.get_dynamic_partitions(AGENTS_PARTITIONS_NAME))
    new = [a for a in dict.fromkeys(agent_ids) if a not in have]
    if new:
        instance.add_dynamic_partitions(AGENTS_PARTITIONS_NAME, new)
    return new


def agent_blocks(agent_order: Sequence[str], chosen: Iterable[str]) -> list[tuple[str, ...]]:
    """Cut ``chosen`` into runs of agents that are consecutive in ``agent_order`` (the partitions' order), so
    each run is one Dagster partition range and no agent outside ``chosen`` is in any of them. Agents that
    are not in the order are an error (not a partition)."""
    pos = {a: i for i, a in enumerate(agent_order)}
    chosen = list(chosen)
    unknown = sorted(a for a in set(chosen) if a not in pos)
    if unknown:
        raise ValueError(f"not registered agent partition(s): {', '.join(unknown[:5])}")
    blocks: list[list[int]] = []
    for i in sorted({pos[a] for a in chosen}):
        if blocks and blocks[-1][-1] == i - 1:
            blocks[-1].append(i)
        else:
            blocks.append([i])
    return [tuple(agent_order[i] for i in block) for block in blocks]


def block_tags(agents: Sequence[str]) -> dict[str, str]:
    """The partition-range tags of a run over consecutive agent partitions."""
    return {"dagster/asset_partition_range_start": agents[0], "dagster/asset_partition_range_end": agents[-1]}


def exact_range_tags(instance: dg.DagsterInstance, agent_ids: Iterable[str] | None = None) -> list[dict[str, str]]:
    """Run tags for exactly ``agent_ids`` (every agent partition when None): one partition range per block of
    consecutive partitions. Running them all materialises those agents and no other — `aob evaluate --agent A
    --agent B` runs A and B only, whoever was registered between them."""
    agents = instance.get_dynamic_partitions(AGENTS_PARTITIONS_NAME)
    if not agents:
        raise ValueError("no agent partitions yet: run sync_partitions first")
    wanted = list(agents if agent_ids is None else dict.fromkeys(agent_ids))
    if not wanted:
        raise ValueError("not registered agent partition(s): none chosen")
    return [block_tags(b) for b in agent_blocks(agents, wanted)]


def agents_in_range(instance: dg.DagsterInstance, tags: dict[str, str]) -> list[str]:
    """The agent partitions a run with these partition-range tags covers (registration order)."""
    agents = list(instance.get_dynamic_partitions(AGENTS_PARTITIONS_NAME))
    start, end = tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]
    return agents[agents.index(start):agents.index(end) + 1]


def range_tags(instance: dg.DagsterInstance, agent_ids: list[str] | None = None) -> dict[str, str]:
    """Run tags selecting ``agent_ids`` (all agents when None) as one partition range; raises ``ValueError``
    when they are not consecutive — use ``exact_range_tags``, which splits a selection into as many runs as
    it needs."""
    blocks = exact_range_tags(instance, agent_ids=agent_ids)
    if len(blocks) != 1:
        raise ValueError(f"agents {agent_ids} are not consecutive partitions: {len(blocks)} runs are needed "
                         "(use exact_range_tags)")
    return blocks[0]


def load_partition_runs(con, agent_ids: list[str]):
    """For a run over agent partitions: the key frame (``agent_id``) whose rows a re-materialisation replaces,
    the stored trajectories of those agents on the scenarios of the `scenarios` table, and those `scenarios`
    rows — read in one short connection."""
    import pandas as pd

    from aob_pipeline.lib.trajectories.store import read_trajectories
    from aob_pipeline.lib.warehouse import table_exists

    keys = pd.DataFrame({"agent_id": pd.Series(list(dict.fromkeys(agent_ids)), dtype="object")})
    if not table_exists(con, "trajectories"):
        return keys, [], con.execute("SELECT * FROM scenarios LIMIT 0").df()
    run_ids = [r[0] for r in con.execute(
        "SELECT t.run_id FROM trajectories t SEMI JOIN scenarios s USING (scenario_id) "
        "WHERE t.agent_id IN (SELECT unnest(?)) ORDER BY t.agent_id, t.scenario_id, t.trial",
        [list(keys["agent_id"])]).fetchall()]
    scenario_rows = con.execute(
        "SELECT s.* FROM scenarios s WHERE s.scenario_id IN (SELECT DISTINCT scenario_id FROM trajectories "
        "WHERE agent_id IN (SELECT unnest(?)))", [list(keys["agent_id"])]).df()
    trajs = read_trajectories(con, run_ids=run_ids) if run_ids else []
    return keys, trajs, scenario_rows
