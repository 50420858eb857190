"""Agents that solve scenarios through the domain tools (pure code, no Dagster).

``oracle.OracleAgent`` follows a scenario's gold plan and answers from its observations: the proof that
every scenario is solvable with the tools, and the reference trajectory for judges.
"""

from aob_pipeline.lib.agents.oracle import ORACLE_AGENT_ID, OracleAgent, OracleResult

__all__ = ["ORACLE_AGENT_ID", "OracleAgent", "OracleResult"]
