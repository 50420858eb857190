"""Each answer kind is declared once (``aob_pipeline.lib.scenarios.answers``) and everything else keys off it:
the oracle's extractors and the heuristic skills name declared kinds only, each in the module of the kind's
domain, and the scenario checks read the declarations without importing an agent."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from aob_pipeline.lib.agents.heuristic.skills import SKILL_KINDS, SKILLS, skill
from aob_pipeline.lib.agents.heuristic.understanding import INTENTS
from aob_pipeline.lib.agents.oracle import EXTRACTORS, extractor
from aob_pipeline.lib.scenarios.answers import ANSWER_KINDS, DOMAINS, answer_kind, kinds_of

TOOL_DOMAINS = ("iot", "fmsr", "tsfm", "wo")
ROOT = Path(__file__).resolve().parents[3]


def module_domain(func) -> str:
    return func.__module__.rsplit(".", 1)[1]


def test_every_kind_is_declared_once_with_its_function_in_its_domain_module():
    assert len(ANSWER_KINDS) >= 80
    for name, kind in ANSWER_KINDS.items():
        assert kind.name == name == kind.func.__name__
        assert kind.domain in DOMAINS, name
        assert kind.func.__module__ == f"aob_pipeline.lib.scenarios.answers.{kind.domain}", name
        assert kind.formats and kind.doc, name
    assert sorted(n for d in DOMAINS for n in kinds_of(d)) == sorted(ANSWER_KINDS)
    assert all(kinds_of(d) for d in DOMAINS)


def test_every_declared_kind_has_exactly_one_oracle_extractor_in_its_domain_module():
    assert set(EXTRACTORS) == set(ANSWER_KINDS)
    for name, func in EXTRACTORS.items():
        assert func.__module__ == f"aob_pipeline.lib.agents.oracle.{ANSWER_KINDS[name].domain}", name


def test_heuristic_skills_name_declared_kinds_of_their_own_domain():
    assert set(SKILLS) == set(SKILL_KINDS) == set(INTENTS)
    produced: Counter[str] = Counter()
    for intent, kinds in SKILL_KINDS.items():
        domain = module_domain(SKILLS[intent].__wrapped__)
        assert INTENTS[intent][0] == domain, intent
        for name in kinds:
            assert ANSWER_KINDS[name].domain in (domain, "multi"), (intent, name)
            produced[name] += 1
    single = [n for n, k in ANSWER_KINDS.items() if k.domain in TOOL_DOMAINS]
    assert {n: produced[n] for n in single if produced[n] != 1} == {}


def test_a_misspelt_kind_fails_where_it_is_named():
    with pytest.raises(ValueError, match="no answer kind"):
        extractor("telemetry_stats")
    with pytest.raises(ValueError, match="no answer kind"):
        skill("another_intent", answers=("telemetry_stats",))
    with pytest.raises(ValueError, match="domain"):
        answer_kind("hvac", reads=[], formats=["label"])
    with pytest.raises(ValueError, match="twice"):
        answer_kind("iot", reads=[], formats=["label"])(ANSWER_KINDS["site_ids"].func)
    assert "another_intent" not in SKILLS and "another_intent" not in SKILL_KINDS


def test_scenarios_import_no_agent():
    """The arrow runs downward: agents read scenarios, never the other way round."""
    offenders = []
    for path in sorted((ROOT / "aob_pipeline" / "lib" / "scenarios").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                          if n.startswith("aob_pipeline.lib.agents")]
    assert offenders == []
