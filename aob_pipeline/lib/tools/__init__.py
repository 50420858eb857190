"""Domain tools served to agents: IoT, FMSR, TSFM, WO and maintenance knowledge.

``base`` holds the contract (``ToolSpec``, ``ToolError``, ``ToolContext``); ``registry`` collects every
group's ``TOOLS`` and calls them (``all_tools``, ``get_tool``, ``call_tool``, ``validate_arguments``,
``describe_tools``). The names, arguments and result shapes are documented in docs/TOOLS_CONTRACT.md.
"""

from aob_pipeline.lib.tools.base import TOOL_GROUPS, ToolContext, ToolError, ToolSpec, jsonable
from aob_pipeline.lib.tools.registry import all_tools, call_tool, describe_tools, get_tool, validate_arguments

__all__ = [
    "TOOL_GROUPS",
    "ToolContext",
    "ToolError",
    "ToolSpec",
    "jsonable",
    "all_tools",
    "call_tool",
    "describe_tools",
    "get_tool",
    "validate_arguments",
]
