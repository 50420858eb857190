"""Maintenance knowledge: the maintenance manual in ``assets_data/manuals/`` and semantic search over it.

The manual is a set of YAML files, each ``{equipment_class, sections: [...]}``. A section is either general
(start-up, filter replacement, lockout/tagout...) or about one failure mode of the catalog
(``failure_mode_id``); every section carries ``summary``, ``checks``, ``procedure`` and ``safety``, and
failure-mode sections also ``symptoms``. ``load_manual`` validates the files and names the file, the
section and the field of any problem.

Search (``search_manual`` and the ``kb_search_manual`` tool) embeds the query with all-MiniLM-L6-v2
(``aob_pipeline.lib.embeddings``, cached on disk) and ranks sections by cosine similarity. Each section is
embedded in parts - title with summary, with symptoms, with checks, with procedure, with safety notes -
because the model reads at most 256 word pieces; a section scores the mean similarity of its two
best-matching parts, and the best part is reported. Agents without this tool can be compared with agents that have it.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import yaml

from aob_pipeline.lib.settings import ASSETS_DATA, Settings
from aob_pipeline.lib.tools._common import CATALOG_CLASSES, object_schema, resolve_class
from aob_pipeline.lib.tools.base import ToolContext, ToolError, ToolSpec

MANUALS_DIR = ASSETS_DATA / "manuals"
MAX_K = 10
LIST_FIELDS = ("symptoms", "checks", "procedure", "safety")
SECTION_FIELDS = {"section_id", "title", "equipment_class", "failure_mode_id", "topic", "summary", *LIST_FIELDS}
SECTION_PARTS = ("summary", *LIST_FIELDS)
"""The parts each section is embedded in (each prefixed with the section's title)."""
TOP_PARTS = 2
"""A section scores the mean similarity of its best-matching parts: on a set of 20 questions this ranked the
right section first 19 times, against 16 for the single best part and 17 for one embedding per section."""


class ManualError(ValueError):
    """A manual file is malformed; the message names the file, the section and the field."""


@dataclass(frozen=True)
class ManualSection:
    section_id: str
    title: str
    equipment_class: str
    summary: str
    checks: tuple[str, ...]
    procedure: tuple[str, ...]
    safety: tuple[str, ...]
    symptoms: tuple[str, ...] = ()
    failure_mode_id: str | None = None
    topic: str | None = None
    source: str = ""

    def text(self) -> str:
        """The section as Markdown: title, summary, then each non-empty list under its heading."""
        lines = [f"# {self.title}", "", self.summary]
        for name, heading in (("symptoms", "Symptoms"), ("checks", "Checks"),
                              ("procedure", "Procedure"), ("safety", "Safety")):
            items = getattr(self, name)
            if not items:
                continue
            lines += ["", f"## {heading}"]
            if name == "procedure":
                lines += [f"{i}. {item}" for i, item in enumerate(items, 1)]
            else:
                lines += [f"- {item}" for item in items]
        return "\n".join(lines)

    def parts(self) -> list[tuple[str, str]]:
        """(part name, text to embed) for every non-empty part; each text starts with the title."""
        out = []
        for name in SECTION_PARTS:
            value = getattr(self, name)
            if not value:
                continue
            body = value if isinstance(value, str) else " ".join(value)
            out.append((name, f"{self.title}. {body}"))
        return out


# ------------------------------------------------------------------------------------------- loading

@overload
def _text_field(path: Path, sid: str, raw: dict[str, Any], name: str, required: Literal[True] = True) -> str: ...
@overload
def _text_field(path: Path, sid: str, raw: dict[str, Any], name: str, required: bool) -> str | None: ...


def _text_field(path: Path, sid: str, raw: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ManualError(f"{path.name}: section {sid}: field '{name}' must be non-empty text")
    return " ".join(value.split())


def _list_field(path: Path, sid: str, raw: dict[str, Any], name: str, required: bool) -> tuple[str, ...]:
    value = raw.get(name)
    if value is None:
        if required:
            raise ManualError(f"{path.name}: section {sid}: field '{name}' is missing (a list of at least one item)")
        return ()
    if not isinstance(value, list) or not value:
        raise ManualError(f"{path.name}: section {sid}: field '{name}' must be a non-empty list of text items")
    items = []
    for i, item in enumerate(value, 1):
        if not isinstance(item, str) or not item.strip():
            hint = " (a ': ' inside an item makes YAML read a mapping; quote the item)" if isinstance(item, dict) else ""
            raise ManualError(f"{path.name}: section {sid}: field '{name}' item {i} must be non-empty text, "
                              f"got {type(item).__name__}{hint}")
        items.append(" ".join(item.split()))
    return tuple(items)


def _parse_file(path: Path) -> list[ManualSection]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ManualError(f"{path.name}:{where} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sections"), list):
        raise ManualError(f"{path.name}: expected a mapping with a 'sections' list")
    file_class = doc.get("equipment_class")
    sections = []
    for i, raw in enumerate(doc["sections"], 1):
        if not isinstance(raw, dict):
            raise ManualError(f"{path.name}: section #{i} must be a mapping")
        sid = raw.get("section_id")
        if not isinstance(sid, str) or not sid.strip():
            raise ManualError(f"{path.name}: section #{i}: field 'section_id' must be non-empty text")
        sid = sid.strip()
        unknown = sorted(set(raw) - SECTION_FIELDS)
        if unknown:
            raise ManualError(f"{path.name}: section {sid}: unknown field(s) {', '.join(unknown)}; "
                              f"allowed: {', '.join(sorted(SECTION_FIELDS))}")
        cls = raw.get("equipment_class", file_class)
        if cls not in CATALOG_CLASSES:
            raise ManualError(f"{path.name}: section {sid}: field 'equipment_class' is {cls!r}; "
                              f"use one of {', '.join(CATALOG_CLASSES)}")
        mode = _text_field(path, sid, raw, "failure_mode_id", required=False)
        sections.append(ManualSection(
            section_id=sid,
            title=_text_field(path, sid, raw, "title"),
            equipment_class=cls,
            summary=_text_field(path, sid, raw, "summary"),
            symptoms=_list_field(path, sid, raw, "symptoms", required=mode is not None),
            checks=_list_field(path, sid, raw, "checks", required=True),
            procedure=_list_field(path, sid, raw, "procedure", required=True),
            safety=_list_field(path, sid, raw, "safety", required=True),
            failure_mode_id=mode,
            topic=_text_field(path, sid, raw, "topic", required=False),
            source=path.name,
        ))
    return sections


def load_manual(folder: str | Path = MANUALS_DIR) -> list[ManualSection]:
    """Every section of every ``*.yaml`` file in ``folder``, in file then section order.

    Raises ``ManualError`` naming the file, the section and the field for malformed input, a section id
    used twice, or two sections for the same failure mode.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ManualError(f"no manual files (*.yaml) in {folder}")
    sections: list[ManualSection] = []
    seen: dict[str, str] = {}
    modes: dict[str, str] = {}
    for path in files:
        for s in _parse_file(path):
            if s.section_id in seen:
                raise ManualError(f"{path.name}: section {s.section_id}: section_id already used in {seen[s.section_id]}")
            seen[s.section_id] = path.name
            if s.failure_mode_id:
                if s.failure_mode_id in modes:
                    raise ManualError(f"{path.name}: section {s.section_id}: failure_mode_id {s.failure_mode_id} "
                                      f"already has section {modes[s.failure_mode_id]}")
                modes[s.failure_mode_id] = s.section_id
            sections.append(s)
    return sections


def check_against_catalog(sections: list[ManualSection], catalog: dict[str, str]) -> list[str]:
    """Problems between the manual and the failure-mode catalog ``{failure_mode_id: equipment_class}``:
    sections naming an unknown mode or the wrong class, and modes without a section."""
    problems = []
    covered = set()
    for s in sections:
        if s.failure_mode_id is None:
            continue
        covered.add(s.failure_mode_id)
        if s.failure_mode_id not in catalog:
            problems.append(f"{s.source}: section {s.section_id}: failure_mode_id {s.failure_mode_id} is not in the catalog")
        elif catalog[s.failure_mode_id] != s.equipment_class:
            problems.append(f"{s.source}: section {s.section_id}: equipment_class {s.equipment_class} differs from the "
                            f"catalog's {catalog[s.failure_mode_id]} for {s.failure_mode_id}")
    for mode in sorted(set(catalog) - covered):
        problems.append(f"failure mode {mode} has no manual section")
    return problems


# -------------------------------------------------------------------------------------------- search

@dataclass(frozen=True)
class ManualIndex:
    """A loaded manual with one embedding per section part."""

    sections: tuple[ManualSection, ...]
    part_section: np.ndarray  # index into sections, per part
    part_name: tuple[str, ...]
    vectors: np.ndarray  # (parts, 384), unit length


def _manual_fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.yaml")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def _index(folder: str, fingerprint: str, settings: Settings | None) -> ManualIndex:
    from aob_pipeline.lib.embeddings import embed_texts

    sections = tuple(load_manual(folder))
    owners, names, texts = [], [], []
    for i, s in enumerate(sections):
        for name, text in s.parts():
            owners.append(i)
            names.append(name)
            texts.append(text)
    vectors = embed_texts(texts, settings)
    return ManualIndex(sections, np.asarray(owners), tuple(names), vectors)


def manual_index(folder: str | Path = MANUALS_DIR, settings: Settings | None = None) -> ManualIndex:
    """The manual with its part embeddings; rebuilt only when a manual file changes (embeddings come from the cache).

    ``settings`` picks the embedding cache (None: see ``aob_pipeline.lib.embeddings.get_embedder``).
    """
    folder = Path(folder).resolve()
    return _index(str(folder), _manual_fingerprint(folder), settings)


@overload
def classes_for_filter(equipment_class: str) -> set[str]: ...
@overload
def classes_for_filter(equipment_class: None) -> None: ...


def classes_for_filter(equipment_class: str | None) -> set[str] | None:
    """Which section classes a class filter admits: Chiller and AHU include the shared HVAC sections."""
    if equipment_class is None:
        return None
    return {equipment_class} if equipment_class == "HVAC" else {equipment_class, "HVAC"}


def search_manual(
    query: str,
    k: int = 3,
    equipment_class: str | None = None,
    failure_mode_id: str | None = None,
    folder: str | Path = MANUALS_DIR,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """The ``k`` sections most similar to ``query``, best first.

    ``equipment_class`` (Chiller, AHU or HVAC) keeps sections of that class, plus the shared HVAC sections
    for Chiller and AHU; ``failure_mode_id`` keeps the section(s) about that mode. Each hit is
    ``{section_id, title, equipment_class, failure_mode_id, topic, matched_part, score, text}`` with
    ``score`` the mean cosine similarity of the section's two best-matching parts (rounded to 4 decimals)
    and ``matched_part`` the best of them.
    """
    from aob_pipeline.lib.embeddings import embed_texts

    if not isinstance(query, str) or not query.strip():
        raise ValueError("query must be non-empty text")
    index = manual_index(folder, settings)
    allowed = classes_for_filter(equipment_class)
    keep = np.array([
        (allowed is None or s.equipment_class in allowed)
        and (failure_mode_id is None or s.failure_mode_id == failure_mode_id)
        for s in index.sections
    ])
    if not keep.any():
        return []
    q = embed_texts([" ".join(query.split())], settings)[0]
    part_scores = index.vectors @ q
    best_score = np.full(len(index.sections), -np.inf)
    best_part = np.full(len(index.sections), -1)
    for i in range(len(index.sections)):
        parts = np.flatnonzero(index.part_section == i)
        ranked = parts[np.argsort(-part_scores[parts], kind="stable")]
        best_part[i] = ranked[0]
        best_score[i] = float(part_scores[ranked[:TOP_PARTS]].mean())
    best_score[~keep] = -np.inf
    order = [i for i in np.argsort(-best_score, kind="stable") if keep[i]][:k]
    hits = []
    for i in order:
        s = index.sections[i]
        hits.append({
            "section_id": s.section_id,
            "title": s.title,
            "equipment_class": s.equipment_class,
            "failure_mode_id": s.failure_mode_id,
            "topic": s.topic,
            "matched_part": index.part_name[best_part[i]],
            "score": round(float(best_score[i]), 4),
            "text": s.text(),
        })
    return hits


# ---------------------------------------------------------------------------------------------- tool

def kb_search_manual(
    ctx: ToolContext,
    query: str,
    equipment_class: str | None = None,
    failure_mode: str | None = None,
    k: int = 3,
) -> dict[str, Any]:
    if not isinstance(query, str) or not query.strip():
        raise ToolError("invalid_arguments", "argument 'query' must be non-empty text",
                        "describe the symptom, task or part, e.g. 'condenser approach rising'")
    cls = resolve_class(equipment_class, CATALOG_CLASSES) if equipment_class is not None else None
    mode_id = None
    if failure_mode is not None:
        from aob_pipeline.lib.tools.fmsr import resolve_failure_mode

        mode = resolve_failure_mode(ctx, failure_mode)
        mode_id = mode["failure_mode_id"]
        if cls is not None and mode["equipment_class"] not in classes_for_filter(cls):
            raise ToolError(
                "invalid_arguments",
                f"failure mode {mode_id} belongs to class {mode['equipment_class']}, not {cls}",
                "drop equipment_class or pick a failure mode of that class",
            )
    hits = search_manual(query, k=k, equipment_class=cls, failure_mode_id=mode_id)
    return {
        "query": query,
        "filters": {"equipment_class": cls, "failure_mode_id": mode_id},
        "count": len(hits),
        "hits": hits,
    }


TOOLS: list[ToolSpec] = [
    ToolSpec(
        name="kb_search_manual",
        group="knowledge",
        description=(
            "Search the maintenance manual (sections per equipment class and per failure mode: symptoms, checks, "
            "procedures, safety notes such as lockout/tagout and refrigerant handling) by meaning. Returns "
            "{query, filters, count, hits:[{section_id, title, equipment_class, failure_mode_id, topic, "
            "matched_part, score, text}]} best first; score is a cosine similarity (higher is closer) and text "
            "the whole section in Markdown. Filter by equipment_class (Chiller or AHU also include shared HVAC "
            "sections) or by failure_mode (id or name) to get that mode's section. Errors: invalid_arguments, "
            "unknown_failure_mode."
        ),
        parameters=object_schema({
            "query": {"type": "string", "minLength": 1,
                      "description": "What you need, in words: a symptom, a task or a part, e.g. "
                                     "'how to replace AHU filters' or 'high condenser approach'."},
            "equipment_class": {"type": "string",
                                "description": "Chiller, AHU or HVAC (case-insensitive)."},
            "failure_mode": {"type": "string",
                             "description": "Failure-mode id (e.g. FM-CH-01) or name from the catalog."},
            "k": {"type": "integer", "minimum": 1, "maximum": MAX_K,
                  "description": f"How many sections to return (default 3, at most {MAX_K})."},
        }, ["query"]),
        func=kb_search_manual,
    ),
]
