"""Synthetic fast agents for bench/bench_scale.py: a few real tool calls, no model, deterministic.

Each agent's behaviour depends on its variant (a number in its registry entry's class name is not
available, so the variant comes from the scenario id and the agent's registered id): it lists assets,
looks at one asset's sensors and answers with what it found. Fast on purpose — the benchmark measures the
pipeline around the agents, not the agents.
"""

from __future__ import annotations

import hashlib

from aob_pipeline.lib.agents.base import Agent


class FastAgent(Agent):
    orchestration = "single"

    def run(self, task, env):
        seed = int(hashlib.sha256(f"{getattr(self, 'agent_id', '')}|{task.scenario_id}".encode()).hexdigest(), 16)
        env.think(f"plan: look at the assets, then one asset's sensors (variant {seed % 7})")
        assets = env.call_tool("iot_list_assets", {})
        rows = (assets.get("result") or {}).get("assets") or []
        if not rows:
            return "no assets found"
        asset = rows[seed % len(rows)]
        sensors = env.call_tool("iot_list_sensors", {"asset": asset.get("asset_id") or asset.get("name")})
        found = (sensors.get("result") or {}).get("sensors") or []
        names = ", ".join(str(s.get("sensor")) for s in found[:3])
        return f"{asset.get('name')} ({asset.get('asset_id')}): {len(found)} sensors, e.g. {names}"
