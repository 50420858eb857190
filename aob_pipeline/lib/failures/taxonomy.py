"""The versioned failure taxonomy: the 14 MAST modes, promoted modes, and candidate modes from failure clusters.

The catalog is ``assets_data/taxonomy/failure_taxonomy.yaml`` (tracked in git). Every mode has a stable ``slug``
(never a published number), a name, a group, a definition and an ``origin`` (``mast`` or ``promoted``);
promoted modes also carry their ``provenance`` (who promoted which candidate, when, from which cluster).
The catalog has a semver-like ``version`` (``MAJOR.MINOR.PATCH``): every flag in ``failure_findings`` is keyed
by slug *and* this version.

Life of a new mode:

1. ``discover_candidates`` looks at the failure clusters of a run. A cluster that is *stable* (its members stay
   together when the clustering is redone with other seeds: mean best-match Jaccard ≥ ``stability``) and whose
   centroid matches *no known mode* (cosine similarity to every known mode's "name: definition" embedding below
   ``threshold``) becomes a :class:`Candidate` with its first-seen date, size and up to 3 example titles.
   Candidates of earlier runs are passed back in (``previous``), so a candidate keeps its slug and first-seen date
   for as long as a cluster with nearly the same centroid keeps appearing.
2. ``taxonomy_frame`` writes known modes and candidates into the ``taxonomy`` table (``status`` known or candidate);
   ``candidates_from_frame`` reads the candidates back for the next run.
3. A reviewer runs ``promote_candidate(path, candidate, reviewer)``: the catalog file gets the mode appended with its
   provenance and the minor version bumped; the change is reviewed and committed like any other file edit.

Validation errors name the file, the entry and the field, e.g.::

    assets_data/taxonomy/failure_taxonomy.yaml: modes entry 3 (step_repetition, line 52): field 'group': unknown group 'spec'
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aob_pipeline.lib.settings import ASSETS_DATA, PROJECT_ROOT
from aob_pipeline.lib.warehouse.schema import ColumnRow, Table, columns

TAXONOMY_PATH = ASSETS_DATA / "taxonomy" / "failure_taxonomy.yaml"
"""The tracked catalog file."""

MAST_GROUPS: dict[str, str] = {
    "specification_and_system_design": "Specification and system design",
    "inter_agent_misalignment": "Inter-agent misalignment",
    "task_verification": "Task verification",
}
"""The three MAST groups: slug → name."""

MAST_MODES: dict[str, str] = {
    "disobey_task_specification": "specification_and_system_design",
    "disobey_role_specification": "specification_and_system_design",
    "step_repetition": "specification_and_system_design",
    "loss_of_conversation_history": "specification_and_system_design",
    "unaware_of_termination_conditions": "specification_and_system_design",
    "conversation_reset": "inter_agent_misalignment",
    "fail_to_ask_for_clarification": "inter_agent_misalignment",
    "task_derailment": "inter_agent_misalignment",
    "information_withholding": "inter_agent_misalignment",
    "ignored_other_agent_input": "inter_agent_misalignment",
    "action_reasoning_mismatch": "inter_agent_misalignment",
    "premature_termination": "task_verification",
    "no_or_incorrect_verification": "task_verification",
    "weak_verification": "task_verification",
}
"""The 14 MAST modes, slug → group slug, in the published order."""

MAST_SLUGS: tuple[str, ...] = tuple(MAST_MODES)
"""The 14 MAST slugs in the published order (the column order of MAST flags)."""

SLUG_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
VERSION_PATTERN = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"

DEFAULT_MATCH_THRESHOLD = 0.5
"""A cluster whose centroid has cosine similarity ≥ this with a known mode's "name: definition" embedding is that mode.

Calibrated with all-MiniLM-L6-v2 on the 16 synthetic failure families of ``bench/bench_failures_clustering.py``:
the centroid of a family that a MAST mode describes scores 0.50-0.62 against that mode; families of the emergent
modes published upstream (error recovery, overstated completion, formatting, invented values, ignored feedback)
score 0.36-0.49 against every MAST mode. The margin is narrow: a candidate is a proposal a reviewer looks at."""
DEFAULT_STABILITY_THRESHOLD = 0.6
"""Minimum cluster stability (mean best-match Jaccard across re-clusterings) for a candidate."""
DEFAULT_MIN_CANDIDATE_SIZE = 5
SAME_CANDIDATE_SIMILARITY = 0.85
"""A cluster whose centroid has cosine ≥ this with an earlier candidate's centroid is that candidate again."""
MAX_EXAMPLE_TITLES = 3


class TaxonomyError(ValueError):
    """One or more problems in the taxonomy catalog; ``problems`` holds one message per problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in the taxonomy catalog:" if len(self.problems) > 1 else ""
        super().__init__("\n".join([head, *self.problems]) if head else self.problems[0])


# ----------------------------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class TaxonomyGroup(_Model):
    """A group of modes (the 3 MAST groups, plus ``emergent`` for promoted modes)."""

    slug: str = Field(pattern=SLUG_PATTERN)
    name: str = Field(min_length=1)
    description: str = ""


class Provenance(_Model):
    """Where a promoted mode came from: the candidate, its cluster and the review."""

    promoted_in_version: str = Field(pattern=VERSION_PATTERN)
    promoted_on: dt.date
    reviewer: str = Field(min_length=1)
    candidate_slug: str = Field(pattern=SLUG_PATTERN)
    first_seen: dt.date
    cluster_size: int = Field(ge=1)
    keywords: tuple[str, ...] = ()
    example_titles: tuple[str, ...] = Field(default=(), max_length=MAX_EXAMPLE_TITLES)


class TaxonomyMode(_Model):
    """One known failure mode of the catalog."""

    slug: str = Field(pattern=SLUG_PATTERN)
    name: str = Field(min_length=1)
    group: str = Field(pattern=SLUG_PATTERN)
    definition: str = Field(min_length=10)
    origin: Literal["mast", "promoted"]
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _provenance_matches_origin(self) -> TaxonomyMode:
        if self.origin == "promoted" and self.provenance is None:
            raise ValueError("a promoted mode needs its 'provenance'")
        if self.origin == "mast" and self.provenance is not None:
            raise ValueError("a MAST mode has no 'provenance' (only promoted modes do)")
        return self


class Taxonomy(_Model):
    """The whole catalog: name, version, groups and known modes (in file order)."""

    name: str = Field(min_length=1)
    version: str = Field(pattern=VERSION_PATTERN)
    description: str = ""
    groups: tuple[TaxonomyGroup, ...]
    modes: tuple[TaxonomyMode, ...]

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        if isinstance(value, (int, float)):
            raise ValueError(f"write the version as a quoted 'MAJOR.MINOR.PATCH' string, not {value!r}")
        return value

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(m.slug for m in self.modes)

    def mode(self, slug: str) -> TaxonomyMode:
        for m in self.modes:
            if m.slug == slug:
                return m
        raise KeyError(f"no failure mode with slug {slug!r} in taxonomy {self.name} {self.version}")

    @property
    def promoted_candidate_slugs(self) -> frozenset[str]:
        """Slugs the promoted modes had as candidates (``discover_candidates(promoted_candidates=...)``)."""
        return frozenset(m.provenance.candidate_slug for m in self.modes if m.provenance is not None)

    def group_name(self, slug: str) -> str:
        for g in self.groups:
            if g.slug == slug:
                return g.name
        raise KeyError(f"no group {slug!r} in taxonomy {self.name} {self.version}")


class Candidate(_Model):
    """A stable failure cluster that matches no known mode (not part of the taxonomy until promoted)."""

    slug: str = Field(pattern=SLUG_PATTERN)
    name: str = Field(min_length=1)
    keywords: tuple[str, ...] = ()
    first_seen: dt.date
    last_seen: dt.date
    size: int = Field(ge=1)
    example_titles: tuple[str, ...] = Field(default=(), max_length=MAX_EXAMPLE_TITLES)
    stability: float = Field(ge=0.0, le=1.0)
    nearest_known_slug: str | None = None
    nearest_known_similarity: float | None = None
    centroid: tuple[float, ...] = Field(min_length=1)

    @property
    def definition(self) -> str:
        """A generated, unreviewed description (a reviewer writes the real definition at promotion)."""
        examples = "; ".join(f"'{t}'" for t in self.example_titles)
        keywords = ", ".join(self.keywords)
        return (f"Candidate from failure clustering, not reviewed: {self.size} failures about {keywords or self.name}"
                + (f"; for example {examples}." if examples else "."))


# ------------------------------------------------------------------------------------------------ loading


def _display(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _field_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _entry_lines(root: yaml.Node | None, key: str) -> list[int]:
    """1-based line of each item of the top-level list ``key`` (empty when absent or not a list)."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for k, v in root.value:
        if getattr(k, "value", None) == key and isinstance(v, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in v.value]
    return []


def _parse(text: str, name: str) -> tuple[dict, yaml.Node | None]:
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise TaxonomyError([f"{name}: {where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise TaxonomyError([f"{name}: the file must be a mapping with name, version, groups and modes"])
    return data, root


def _validate(data: dict, root: yaml.Node | None, name: str) -> Taxonomy:
    problems: list[str] = []
    for key in ("name", "version", "groups", "modes"):
        if key not in data:
            problems.append(f"{name}: field {key!r}: missing")
    for key in ("groups", "modes"):
        if key in data and not isinstance(data[key], list):
            problems.append(f"{name}: field {key!r}: must be a list")
    if problems:
        raise TaxonomyError(problems)

    def label(key: str, index: int, raw: Any) -> str:
        lines = _entry_lines(root, key)
        ident = raw.get("slug") if isinstance(raw, dict) else None
        where = [str(ident) if ident else "no slug"]
        if index < len(lines):
            where.append(f"line {lines[index]}")
        return f"{name}: {key} entry {index + 1} ({', '.join(where)})"

    groups: list[TaxonomyGroup] = []
    for i, raw in enumerate(data["groups"]):
        try:
            groups.append(TaxonomyGroup.model_validate(raw))
        except ValidationError as exc:
            problems += _pydantic_problems(label("groups", i, raw), exc)
    modes: list[tuple[int, TaxonomyMode]] = []
    for i, raw in enumerate(data["modes"]):
        try:
            modes.append((i, TaxonomyMode.model_validate(raw)))
        except ValidationError as exc:
            problems += _pydantic_problems(label("modes", i, raw), exc)
    header = {k: v for k, v in data.items() if k not in ("groups", "modes")}
    try:
        Taxonomy.model_validate({**header, "groups": [], "modes": []})
    except ValidationError as exc:
        problems += _pydantic_problems(name, exc)

    group_slugs = [g.slug for g in groups]
    for slug in sorted({s for s in group_slugs if group_slugs.count(s) > 1}):
        problems.append(f"{name}: groups: slug {slug!r} appears {group_slugs.count(slug)} times")
    seen: dict[str, int] = {}
    for i, mode in modes:
        where = label("modes", i, data["modes"][i])
        if mode.slug in seen:
            problems.append(f"{where}: field 'slug': duplicate slug {mode.slug!r} (first in entry {seen[mode.slug] + 1})")
        else:
            seen[mode.slug] = i
        if mode.group not in group_slugs:
            problems.append(f"{where}: field 'group': unknown group {mode.group!r} (groups: {', '.join(group_slugs)})")
        expected = MAST_MODES.get(mode.slug)
        if expected is not None and mode.group != expected:
            problems.append(f"{where}: field 'group': MAST mode {mode.slug!r} belongs to group {expected!r}")
        if expected is not None and mode.origin != "mast":
            problems.append(f"{where}: field 'origin': {mode.slug!r} is a MAST mode, so its origin is 'mast'")
        if expected is None and mode.origin == "mast":
            problems.append(f"{where}: field 'origin': {mode.slug!r} is not one of the 14 MAST modes")
    missing = [s for s in MAST_SLUGS if s not in seen]
    if missing:
        problems.append(f"{name}: modes: MAST mode(s) missing: {', '.join(missing)}")
    if problems:
        raise TaxonomyError(problems)
    return Taxonomy.model_validate({**header, "groups": groups, "modes": [m for _, m in modes]})


def _pydantic_problems(prefix: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = _field_path(err.get("loc", ()))
        msg = err.get("msg", "invalid")
        out.append(f"{prefix}: field {loc!r}: {msg}" if loc else f"{prefix}: {msg}")
    return out


def load_taxonomy(path: str | Path = TAXONOMY_PATH) -> Taxonomy:
    """Read and validate the catalog; raises :class:`TaxonomyError` listing every problem (file, entry, field).

    Checks: each group and mode against its model (slug pattern, non-empty name and definition, provenance for
    promoted modes), a semver-like quoted version, unique group and mode slugs, every mode's group defined, all
    14 MAST modes present in their MAST group with origin ``mast``.
    """
    path = Path(path)
    name = _display(path)
    if not path.is_file():
        raise TaxonomyError([f"{name}: taxonomy catalog not found"])
    data, root = _parse(path.read_text(encoding="utf-8"), name)
    return _validate(data, root, name)


# -------------------------------------------------------------------------------------- known-mode embeddings


def known_mode_texts(taxonomy: Taxonomy) -> dict[str, str]:
    """The text embedded for each known mode: ``"<name>: <definition>"``, by slug."""
    return {m.slug: f"{m.name}: {m.definition}" for m in taxonomy.modes}


def embed_known_modes(taxonomy: Taxonomy, embed: Callable[[list[str]], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Embedding of each known mode's name and definition, by slug (default: ``embeddings.embed_texts``, cached)."""
    if embed is None:
        from aob_pipeline.lib.embeddings import embed_texts

        embed = embed_texts
    texts = known_mode_texts(taxonomy)
    vectors = np.asarray(embed(list(texts.values())), dtype=np.float32)
    return dict(zip(texts, vectors))


# ------------------------------------------------------------------------------------------------ candidates


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-12)


def _slugify(words: Iterable[str], taken: set[str]) -> str:
    parts: list[str] = []
    for w in words:
        for token in re.findall(r"[a-z][a-z0-9]*", w.lower()):
            if token not in parts:
                parts.append(token)
        if len(parts) >= 3:
            break
    base = "_".join(parts[:3]) or "candidate"
    if not re.match(r"^[a-z]", base):
        base = f"mode_{base}"
    base = base[:56]
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}_{k}", k + 1
    return slug


def _json_list(value: Any, what: str, cluster_id: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"clusters: cluster {cluster_id}: field {what!r}: not a JSON list ({exc})") from None
            return [str(x) for x in parsed]
        return [part.strip() for part in text.split(",") if part.strip()]
    return [str(x) for x in value]


def discover_candidates(
    clusters: pd.DataFrame,
    known_embeddings: Mapping[str, np.ndarray],
    threshold: float = DEFAULT_MATCH_THRESHOLD,
    stability: float = DEFAULT_STABILITY_THRESHOLD,
    *,
    centroids: Mapping[int, np.ndarray],
    previous: Sequence[Candidate] = (),
    seen_on: dt.date | None = None,
    min_size: int = DEFAULT_MIN_CANDIDATE_SIZE,
    same_candidate_similarity: float = SAME_CANDIDATE_SIMILARITY,
    promoted_candidates: Iterable[str] = (),
) -> list[Candidate]:
    """Candidate modes among the failure clusters of one run, largest first.

    A cluster (a row of ``naming.cluster_table``: cluster_id, label, size, keywords, example_titles, stability;
    noise −1 is never a candidate) becomes a candidate when

    - its ``size`` ≥ ``min_size``,
    - its ``stability`` (mean best-match Jaccard across re-clusterings, from ``ClusterResult.cluster_stability``)
      ≥ ``stability`` — a cluster without a stability figure is not stable,
    - the cosine similarity of its centroid (``centroids[cluster_id]``, e.g. ``naming.cluster_centroids``) to
      every known mode's embedding (``known_embeddings``: slug → vector, e.g. ``embed_known_modes``) is below
      ``threshold``.

    A candidate whose centroid has cosine ≥ ``same_candidate_similarity`` with one of ``previous`` (the candidates
    of earlier runs, e.g. ``candidates_from_frame``) keeps that candidate's slug and ``first_seen`` (one-to-one,
    most similar pairs first); others get a slug from their keywords and ``first_seen = seen_on`` (default today).
    Earlier candidates that no cluster matches are not carried over: they were not seen in this run.

    A cluster that is an earlier candidate since promoted (its slug is in ``known_embeddings``, or in
    ``promoted_candidates``, e.g. ``Taxonomy.promoted_candidate_slugs`` when the reviewer renamed it) is that known
    mode now, even if its reviewed definition reads differently from the cluster's titles.
    """
    required = {"cluster_id", "label", "size", "keywords", "example_titles", "stability"}
    missing = sorted(required - set(clusters.columns))
    if missing:
        raise ValueError(f"clusters: missing column(s) {', '.join(missing)} (expected naming.cluster_table output)")
    seen_on = seen_on or dt.date.today()
    known_slugs = list(known_embeddings)
    known = _unit(np.stack([np.asarray(known_embeddings[s]) for s in known_slugs])) if known_slugs else None

    eligible: list[tuple[dict, np.ndarray, str | None, float | None]] = []
    for row in clusters.to_dict("records"):
        cid = int(row["cluster_id"])
        if cid < 0 or int(row["size"]) < min_size:
            continue
        stab = row["stability"]
        if stab is None or not np.isfinite(stab) or float(stab) < stability:
            continue
        if cid not in centroids:
            raise ValueError(f"clusters: cluster {cid}: no centroid given (pass naming.cluster_centroids(...))")
        centroid = _unit(np.asarray(centroids[cid]))
        nearest, best = None, None
        if known is not None:
            sims = known @ centroid
            j = int(np.argmax(sims))
            nearest, best = known_slugs[j], float(sims[j])
            if best >= threshold:
                continue
        eligible.append((row, centroid, nearest, best))

    # match with earlier candidates: one-to-one, most similar pairs first
    matched: dict[int, Candidate] = {}
    if previous and eligible:
        prev_c = _unit(np.stack([np.asarray(p.centroid) for p in previous]))
        sims = np.stack([c for _, c, _, _ in eligible]) @ prev_c.T
        order = np.dstack(np.unravel_index(np.argsort(-sims, axis=None, kind="stable"), sims.shape))[0]
        used_prev: set[int] = set()
        for i, j in order:
            if sims[i, j] < same_candidate_similarity:
                break
            if i in matched or j in used_prev:
                continue
            matched[int(i)] = previous[int(j)]
            used_prev.add(int(j))

    retired = set(known_slugs) | set(promoted_candidates)
    taken = set(known_slugs) | {p.slug for p in matched.values()}
    out: list[Candidate] = []
    for i, (row, centroid, nearest, best) in enumerate(eligible):
        if i in matched and matched[i].slug in retired:
            continue
        keywords = _json_list(row["keywords"], "keywords", row["cluster_id"])
        examples = _json_list(row["example_titles"], "example_titles", row["cluster_id"])[:MAX_EXAMPLE_TITLES]
        before = matched.get(i)
        if before is not None:
            slug, first_seen = before.slug, min(before.first_seen, seen_on)
        else:
            slug, first_seen = _slugify(keywords or [str(row["label"])], taken), seen_on
            taken.add(slug)
        out.append(Candidate(
            slug=slug, name=str(row["label"]), keywords=tuple(keywords), first_seen=first_seen, last_seen=seen_on,
            size=int(row["size"]), example_titles=tuple(examples), stability=float(min(max(row["stability"], 0.0), 1.0)),
            nearest_known_slug=nearest, nearest_known_similarity=None if best is None else round(best, 4),
            centroid=tuple(float(x) for x in np.round(centroid, 6)),
        ))
    out.sort(key=lambda c: (-c.size, c.slug))
    return out


# ------------------------------------------------------------------------------------------ the taxonomy table

def _table(name: str, description: str, rows: list[ColumnRow], key: tuple[str, ...] = ()) -> Table:
    return Table(name, description, columns(rows), key)


TAXONOMY_TABLE: Table = _table("taxonomy", "The failure taxonomy of this run: known modes (MAST and promoted) and candidate modes from failure clusters.", [
    ("slug", "VARCHAR", "Stable key of the mode (snake_case); findings refer to modes by slug and version.", False),
    ("name", "VARCHAR", "Mode name (a candidate: the title nearest its cluster centre).", False),
    ("mode_group", "VARCHAR", "Group slug: specification_and_system_design, inter_agent_misalignment, task_verification, emergent; NULL for candidates."),
    ("version", "VARCHAR", "Taxonomy version (MAJOR.MINOR.PATCH) this row belongs to.", False),
    ("status", "VARCHAR", "known (in the catalog) or candidate (a stable cluster matching no known mode).", False),
    ("origin", "VARCHAR", "mast, promoted (a former candidate) or cluster (a candidate)."),
    ("first_seen", "DATE", "Candidates: the first run date the cluster appeared; promoted modes: the candidate's first-seen date."),
    ("last_seen", "DATE", "Candidates: the date of this run."),
    ("size", "BIGINT", "Candidates: failures in the cluster; promoted modes: cluster size at promotion."),
    ("example_titles", "VARCHAR", "JSON list of up to 3 example failure titles (nearest the cluster centre)."),
    ("keywords", "VARCHAR", "JSON list of the cluster's c-TF-IDF keywords (candidates and promoted modes)."),
    ("definition", "VARCHAR", "The mode's definition (candidates: a generated, unreviewed description)."),
    ("stability", "DOUBLE", "Candidates: mean best-match Jaccard of the cluster across re-clusterings with other seeds."),
    ("nearest_known_slug", "VARCHAR", "Candidates: the most similar known mode."),
    ("nearest_known_similarity", "DOUBLE", "Candidates: cosine similarity of the cluster centre to that mode (below the match threshold)."),
    ("centroid", "VARCHAR", "Candidates: JSON list of the unit-length cluster centre (384 floats), used to recognise the candidate in later runs."),
], key=("slug", "version"))


def taxonomy_frame(taxonomy: Taxonomy, candidates: Sequence[Candidate] = ()) -> pd.DataFrame:
    """Rows of the ``taxonomy`` table: every known mode (file order), then the candidates (largest first).

    Columns as :data:`TAXONOMY_TABLE`. A candidate whose slug is now a known mode (it was promoted) is dropped.
    """
    rows: list[dict[str, Any]] = []
    for m in taxonomy.modes:
        p = m.provenance
        rows.append({
            "slug": m.slug, "name": m.name, "mode_group": m.group, "version": taxonomy.version, "status": "known",
            "origin": m.origin, "first_seen": p.first_seen if p else None, "last_seen": None,
            "size": p.cluster_size if p else None,
            "example_titles": json.dumps(list(p.example_titles) if p else []),
            "keywords": json.dumps(list(p.keywords) if p else []),
            "definition": m.definition, "stability": None, "nearest_known_slug": None,
            "nearest_known_similarity": None, "centroid": None,
        })
    known = set(taxonomy.slugs)
    for c in candidates:
        if c.slug in known:
            continue
        rows.append({
            "slug": c.slug, "name": c.name, "mode_group": None, "version": taxonomy.version, "status": "candidate",
            "origin": "cluster", "first_seen": c.first_seen, "last_seen": c.last_seen, "size": c.size,
            "example_titles": json.dumps(list(c.example_titles)), "keywords": json.dumps(list(c.keywords)),
            "definition": c.definition, "stability": c.stability, "nearest_known_slug": c.nearest_known_slug,
            "nearest_known_similarity": c.nearest_known_similarity, "centroid": json.dumps(list(c.centroid)),
        })
    frame = pd.DataFrame(rows, columns=TAXONOMY_TABLE.column_names)
    frame["size"] = frame["size"].astype("Int64")
    for col in ("first_seen", "last_seen"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)  # type: ignore[call-overload]  # pandas takes None as `other`; its stubs do not
    return frame


def candidates_from_frame(frame: pd.DataFrame) -> list[Candidate]:
    """The candidates stored in a ``taxonomy`` table (rows with status ``candidate``), to pass as ``previous``."""
    out: list[Candidate] = []
    if frame is None or frame.empty:
        return out
    for i, row in enumerate(frame.to_dict("records")):
        if row.get("status") != "candidate":
            continue
        try:
            out.append(Candidate(
                slug=row["slug"], name=row["name"], keywords=tuple(json.loads(row.get("keywords") or "[]")),
                first_seen=pd.Timestamp(row["first_seen"]).date(), last_seen=pd.Timestamp(row["last_seen"]).date(),
                size=int(row["size"]), example_titles=tuple(json.loads(row.get("example_titles") or "[]")),
                stability=float(row["stability"]), nearest_known_slug=row.get("nearest_known_slug"),
                nearest_known_similarity=(None if row.get("nearest_known_similarity") is None
                                          or pd.isna(row.get("nearest_known_similarity"))
                                          else float(row["nearest_known_similarity"])),
                centroid=tuple(json.loads(row["centroid"])),
            ))
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"taxonomy table: row {i} (slug {row.get('slug')!r}): not a valid candidate: {exc}") from None
    return out


# ----------------------------------------------------------------------------------------------- promotion


def bump_minor(version: str) -> str:
    """``1.4.2`` → ``1.5.0``."""
    m = re.match(VERSION_PATTERN, version)
    if not m:
        raise ValueError(f"not a MAJOR.MINOR.PATCH version: {version!r}")
    return f"{m.group(1)}.{int(m.group(2)) + 1}.0"


def promote_candidate(
    path: str | Path,
    candidate: Candidate,
    reviewer: str,
    *,
    slug: str | None = None,
    name: str | None = None,
    definition: str | None = None,
    group: str = "emergent",
    promoted_on: dt.date | None = None,
) -> str:
    """Append ``candidate`` to the catalog file at ``path`` as a known mode and bump the minor version; returns it.

    The reviewer may rename the mode (``slug``, ``name``) and should write its ``definition`` (default: the
    candidate's generated description). The file is edited in place, keeping its comments and layout: the version
    line is rewritten and the new mode is appended after the last one (``modes`` must be the file's last key), with
    ``provenance`` (version, date, reviewer, candidate slug, first-seen date, cluster size, keywords, example
    titles). The result is validated before the file is replaced (atomically); nothing is written on error.
    """
    path = Path(path)
    name_of_file = _display(path)
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ValueError(f"{name_of_file}: promotion of {candidate.slug!r} needs a reviewer")
    taxonomy = load_taxonomy(path)
    text = path.read_text(encoding="utf-8")
    slug = slug or candidate.slug
    if slug in taxonomy.slugs:
        raise ValueError(f"{name_of_file}: cannot promote {candidate.slug!r}: slug {slug!r} is already a known mode")
    if group not in [g.slug for g in taxonomy.groups]:
        raise ValueError(f"{name_of_file}: cannot promote {candidate.slug!r}: unknown group {group!r}")
    root = yaml.compose(text)
    last_key = root.value[-1][0].value if isinstance(root, yaml.MappingNode) and root.value else None
    if last_key != "modes":
        raise ValueError(f"{name_of_file}: 'modes' must be the last key of the file to append a mode (found {last_key!r})")
    version_lines = [m for m in re.finditer(r'^version:[ \t]*["\']?([^"\'\s#]+)["\']?[ \t]*(#.*)?$', text, re.M)]
    if len(version_lines) != 1:
        raise ValueError(f"{name_of_file}: expected exactly one top-level 'version:' line, found {len(version_lines)}")
    new_version = bump_minor(taxonomy.version)
    entry = {
        "slug": slug,
        "name": name or candidate.name,
        "group": group,
        "definition": definition or candidate.definition,
        "origin": "promoted",
        "provenance": {
            "promoted_in_version": new_version,
            "promoted_on": (promoted_on or dt.date.today()).isoformat(),
            "reviewer": reviewer,
            "candidate_slug": candidate.slug,
            "first_seen": candidate.first_seen.isoformat(),
            "cluster_size": candidate.size,
            "keywords": list(candidate.keywords),
            "example_titles": list(candidate.example_titles),
        },
    }
    block = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)
    block = "".join(f"  {line}" if line.strip() else line for line in block.splitlines(keepends=True))
    head = version_lines[0]
    new_text = text[: head.start()] + f'version: "{new_version}"' + text[head.end():]
    if not new_text.endswith("\n"):
        new_text += "\n"
    new_text += block
    data, new_root = _parse(new_text, name_of_file)
    updated = _validate(data, new_root, name_of_file)
    if updated.version != new_version or updated.slugs != (*taxonomy.slugs, slug):
        raise ValueError(f"{name_of_file}: appending {slug!r} did not give the expected catalog; edit the file by hand")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(new_text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return new_version
