"""How the heuristic agents answer each intent: one skill per intent, split by the intent's domain.

- ``_common``: ``Toolbox`` (tool access of one acting agent), ``Journal``, ``Outcome``, the ``@skill`` registry
  (``SKILLS``; ``SKILL_KINDS`` maps each intent to the declared answer kinds it produces) and shared helpers;
- ``iot``, ``fmsr``, ``tsfm``, ``wo``: the skills of that domain's intents, next to the tools they call
  (``aob_pipeline.lib.tools.<domain>``) and the answer kinds they produce (``aob_pipeline.lib.scenarios.answers``).
"""

# Importing the domain modules registers their skills.
from aob_pipeline.lib.agents.heuristic.skills import fmsr, iot, tsfm, wo  # noqa: F401
from aob_pipeline.lib.agents.heuristic.skills._common import (
    DOMAIN_GROUPS,
    DOMAIN_OF_GROUP,
    MAX_PAGES,
    PAGE_SIZE,
    SKILL_KINDS,
    SKILLS,
    Call,
    CannotAnswer,
    Journal,
    Outcome,
    RoleViolation,
    Skill,
    Toolbox,
    ToolFailed,
    scoped,
    skill,
)
from aob_pipeline.lib.agents.heuristic.skills.fmsr import failure_mode_code
from aob_pipeline.lib.agents.heuristic.skills.wo import bundle_rule, find_window_days

__all__ = [
    "DOMAIN_GROUPS",
    "DOMAIN_OF_GROUP",
    "MAX_PAGES",
    "PAGE_SIZE",
    "SKILLS",
    "SKILL_KINDS",
    "Call",
    "CannotAnswer",
    "Journal",
    "Outcome",
    "RoleViolation",
    "Skill",
    "ToolFailed",
    "Toolbox",
    "bundle_rule",
    "failure_mode_code",
    "find_window_days",
    "scoped",
    "skill",
]
