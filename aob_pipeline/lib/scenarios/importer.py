"""Import public AssetOpsBench scenarios as ``Scenario`` records, from every published shape.

Shapes read (a file, or a folder searched recursively for ``*.json`` / ``*.jsonl``):

- JSON lines (``all_utterance.jsonl``; the CODS challenge files ``benchmark/scenarios/phase*/scenarios.jsonl``:
  ``{id: "Q400", category: IoT|FMSR|TSFM|WO|E2E, utterance, phase, source}``, whose category is the type and whose
  ``Q<n>`` ids are upstream's scenario ``<n>``, so they share its ground truth) and JSON arrays (``single_agent/*_utterance.json``,
  ``multi_agent/end2end_utterance.json``) of records ``{id, type?, text, category?, characteristic_form?,
  deterministic?, note?, ...}``; other keys are ignored. Dataset metadata (the croissant files: one JSON object
  that is not a record) is skipped with its reason.
- ``id`` is kept as upstream writes it, as text (``101``, ``Q5``): ``upstream_id``; the scenario id is
  ``PUB-<upstream id>`` so it never collides with curated ones.
- ``type`` comes from the record (IoT, FMSR, TSFM, Workorder; ``""`` is an end-to-end task), else from the file
  name (``fmsr_utterance.json`` → FMSR, ``end2end`` → multi-agent, ...), else from upstream's id ranges
  (IoT 1–99, FMSR 100–199, TSFM 200–299, WO 400–499, end-to-end 500–699); ``type_source`` says which.
- A record without ``category`` or ``characteristic_form`` (upstream has a few) loads with a placeholder and a
  note; a record without an id or text, or with an unknown type, is a problem named by file, line (JSON
  lines) or index (arrays), upstream id and field. Problems are reported and the other records load;
  ``strict=True`` refuses the file at its first problem (``ScenarioImportError``).
- The same upstream id in two files (``all_utterance.jsonl`` and the per-agent files hold the same 141) is one
  scenario: fields one file lacks are taken from the other; a differing text is reported and the first kept.

Ground truth: ``assets_data/assetopsbench/ground_truth.yaml`` gives, keyed by upstream id, an answer spec (a
function of ``answers.py`` computed from the imported world, never a typed-in value) and the gold plan the
oracle follows; a scenario listed there is answerable. Every other scenario has no answer and
``unanswerable_reason`` says why (from the file's ``unanswerable`` ranges, else a general reason).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aob_pipeline.lib.errors import AobError
from aob_pipeline.lib.scenarios.model import Scenario
from aob_pipeline.lib.settings import ASSETS_DATA

TYPE_MAP = {"iot": "IoT", "fmsr": "FMSR", "tsfm": "TSFM", "workorder": "WO", "wo": "WO", "": "multi-agent",
            "multi-agent": "multi-agent", "multiagent": "multi-agent", "end2end": "multi-agent", "e2e": "multi-agent"}
SUB_AGENT = {"IoT": ["iot"], "FMSR": ["fmsr"], "TSFM": ["tsfm"], "WO": ["wo"], "multi-agent": []}
FILE_TYPES = (("fmsr", "FMSR"), ("tsfm", "TSFM"), ("iot", "IoT"), ("wo_", "WO"), ("workorder", "WO"),
              ("end2end", "multi-agent"), ("multi_agent", "multi-agent"))
ID_RANGES = ((1, 99, "IoT"), (100, 199, "FMSR"), (200, 299, "TSFM"), (400, 499, "WO"), (500, 699, "multi-agent"))
UNANSWERABLE_REASON = (
    "imported public AssetOpsBench scenario: its answer is given only in words (characteristic_form) and the "
    "public data does not determine it, so none is computed; judges compare the trajectory with the "
    "characteristic form"
)
MISSING_CATEGORY = "Uncategorised"
MISSING_FORM = "(upstream gives no characteristic form for this scenario)"
ID_PREFIX = "PUB-"
GROUND_TRUTH_PATH = ASSETS_DATA / "assetopsbench" / "ground_truth.yaml"


class ScenarioImportError(AobError, ValueError):
    """A malformed public scenario file: names the file, line or index, upstream id and field."""

    def __init__(self, path: Path | str, where: str, message: str, *, upstream_id: Any = None, field: str | None = None):
        parts = [f"{path}:{where}"]
        if upstream_id is not None:
            parts.append(f"scenario id {upstream_id!r}")
        if field:
            parts.append(f"field {field!r}")
        super().__init__(": ".join(parts) + f": {message}")
        self.path, self.where, self.upstream_id, self.field, self.message = str(path), where, upstream_id, field, message


@dataclass
class ScenarioImport:
    """What an import read: the scenarios, the records refused (each a ScenarioImportError), per-file counts
    (records in, scenarios kept), skipped files and notes. ``to_text()`` is what the CLI prints."""

    scenarios: list[Scenario] = field(default_factory=list)
    problems: list[ScenarioImportError] = field(default_factory=list)
    files: list[tuple[str, int, int]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def answerable(self) -> int:
        return sum(1 for s in self.scenarios if s.answerable)

    def to_text(self) -> str:
        lines = [f"{len(self.scenarios)} scenario(s) read, {self.answerable} with a computed answer "
                 f"(ground truth from the public data), {len(self.scenarios) - self.answerable} unanswerable"]
        for path, n_in, n_new in self.files:
            lines.append(f"  {path}: {n_in} record(s), {n_new} new scenario(s)")
        for path, reason in self.skipped:
            lines.append(f"  skipped {path}: {reason}")
        if self.problems:
            lines.append(f"{len(self.problems)} record(s) not loaded:")
            lines.extend(f"  {p}" for p in self.problems)
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _records(path: Path) -> list[tuple[str, Any]]:
    """(where, record) pairs: 'line N' for JSON lines, 'index N' for a JSON array (a lone object: 'document')."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_no = raw[: exc.start].count(b"\n") + 1
        raise ScenarioImportError(path, f"line {line_no}", f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset "
                                                        f"{exc.start}") from None
    stripped = text.lstrip()
    if not stripped:
        return []
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioImportError(path, f"line {exc.lineno}", f"not valid JSON: {exc.msg}") from None
        return [(f"index {i}", rec) for i, rec in enumerate(data)]
    whole = _whole_json(text)
    if isinstance(whole, dict):  # one object: a one-line JSON-lines file, or a pretty-printed document
        return [("line 1" if "\n" not in stripped.strip() else "document", whole)]
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((f"line {n}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ScenarioImportError(path, f"line {n}", f"not valid JSON: {exc.msg}") from None
    return out


def _whole_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _upstream_id(rec: dict[str, Any]) -> str | None:
    raw = rec.get("id")
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, (int, str)):
        text = str(raw).strip()
        return text or None
    return None


def _type_of(rec: dict[str, Any], path: Path, upstream_id: str) -> tuple[str | None, str | None, str | None]:
    """(type, type_source, problem)."""
    raw = rec.get("type")
    category = rec.get("category")
    if raw is None and "type" not in rec and isinstance(category, str) and category.strip().lower() in TYPE_MAP \
            and category.strip():
        return TYPE_MAP[category.strip().lower()], "record", None  # CODS: the category is the type
    if isinstance(raw, str) and raw.strip().lower() in TYPE_MAP:
        return TYPE_MAP[raw.strip().lower()], "record", None
    if raw is not None and not isinstance(raw, str) or (isinstance(raw, str) and raw.strip().lower() not in TYPE_MAP):
        return None, None, f"must be IoT, FMSR, TSFM, Workorder or \"\" (end-to-end), got {raw!r}"
    name = path.name.lower()
    for token, kind in FILE_TYPES:
        if token in name:
            return kind, "file", None
    digits = re.sub(r"\D", "", upstream_id)
    if digits and upstream_id.isdigit():
        number = int(digits)
        for lo, hi, kind in ID_RANGES:
            if lo <= number <= hi:
                return kind, "id range", None
    return None, None, "no type in the record, the file name or upstream's id ranges"


def _text(rec: dict[str, Any], name: str) -> str | None:
    value = rec.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


@lru_cache(maxsize=4)
def _ground_truth(path: str) -> tuple[dict[str, dict[str, Any]], list[tuple[int, int, str]]]:
    p = Path(path)
    if not p.is_file():
        return {}, []
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    answers = {str(k): v for k, v in (data.get("answers") or {}).items()}
    ranges = []
    for entry in data.get("unanswerable") or []:
        lo, _, hi = str(entry["ids"]).partition("-")
        ranges.append((int(lo), int(hi or lo), entry["reason"]))
    return answers, ranges


def parse_public_record(path: Path, where: str, rec: Any, ground_truth: Path | None = GROUND_TRUTH_PATH) -> Scenario:
    """One public record as an imported ``Scenario`` (with its computed answer spec when the ground truth has one)."""
    if not isinstance(rec, dict):
        raise ScenarioImportError(path, where, f"expected an object, got {type(rec).__name__}")
    upstream_id = _upstream_id(rec)
    if upstream_id is None or not re.fullmatch(r"[A-Za-z0-9]+", upstream_id):
        raise ScenarioImportError(path, where, f"must be an id of letters and digits, got {rec.get('id')!r}", field="id")
    scenario_type, type_source, problem = _type_of(rec, path, upstream_id)
    if problem or scenario_type is None:  # _type_of gives a type whenever it names no problem
        raise ScenarioImportError(path, where, problem or "no type", upstream_id=upstream_id, field="type")
    text_field = next((k for k in ("text", "utterance", "question") if k in rec), "text")
    text = _text(rec, text_field)
    if text is None:
        raise ScenarioImportError(path, where, f"must be a non-empty text, got {rec.get(text_field)!r}",
                                  upstream_id=upstream_id, field=text_field)
    deterministic = rec.get("deterministic", False)
    if deterministic is None:
        deterministic = False
    if not isinstance(deterministic, bool):
        raise ScenarioImportError(path, where, f"must be true or false, got {deterministic!r}",
                                  upstream_id=upstream_id, field="deterministic")
    category = _text(rec, "category") or MISSING_CATEGORY
    record: dict[str, Any] = {
        "id": f"{ID_PREFIX}{upstream_id.upper()}",
        "type": scenario_type,
        "text": text,
        "category": category,
        "task_type": "end-to-end" if scenario_type == "multi-agent" else category.lower(),
        "output_format": "free text",
        "characteristic_form": _text(rec, "characteristic_form") or MISSING_FORM,
        "sub_agents": SUB_AGENT[scenario_type],
        "deterministic": deterministic,
        "split": "public",
        "robustness": "none",
        "source": "imported",
        "note": _text(rec, "note"),
        "upstream_id": upstream_id,
        "type_source": type_source,
    }
    answers, ranges = _ground_truth(str(ground_truth)) if ground_truth else ({}, [])
    number = re.fullmatch(r"[Qq](\d+)", upstream_id)  # CODS 'Q400' is upstream's scenario 400
    spec = answers.get(upstream_id) or (answers.get(number.group(1)) if number else None)
    if spec:
        record.update({k: v for k, v in spec.items() if k in ("answer", "gold_plan", "sub_agents", "required_evidence",
                                                               "output_format")})
        if spec.get("note"):
            record["note"] = (record["note"] + " " if record["note"] else "") + str(spec["note"]).strip()
    else:
        reason = UNANSWERABLE_REASON
        digits = upstream_id if upstream_id.isdigit() else (number.group(1) if number else None)
        if digits:
            reason = next((r for lo, hi, r in ranges if lo <= int(digits) <= hi), reason)
        record["unanswerable_reason"] = reason
    try:
        return Scenario.model_validate(record)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ScenarioImportError(path, where, str(err["msg"]), upstream_id=upstream_id,
                                  field=".".join(str(x) for x in err["loc"]) or None) from None


def _scenario_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".jsonl")
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def read_public_scenarios(path: str | Path, *, strict: bool = False,
                          ground_truth: Path | None = GROUND_TRUTH_PATH) -> ScenarioImport:
    """Read public scenario files (a file or a folder): every good record loads, bad ones are reported.

    ``strict`` refuses a file at its first bad record (raises ``ScenarioImportError``). The same upstream id in
    several files is one scenario. Raises ``ScenarioImportError`` for a missing path, or when nothing loads.
    """
    path = Path(path)
    if not path.exists():
        raise ScenarioImportError(path, "file", "no such file")
    out = ScenarioImport()
    by_id: dict[str, tuple[Scenario, str]] = {}
    order: list[str] = []
    base = path if path.is_dir() else path.parent
    for file in _scenario_files(path):
        shown = file.relative_to(base).as_posix() if path.is_dir() else str(file)
        records = _records(file)
        if not records:
            if path.is_file():
                raise ScenarioImportError(file, "file", "is empty: no scenario records (nothing imported; the "
                                                        "existing scenarios are unchanged)")
            out.skipped.append((shown, "empty"))
            continue
        if len(records) == 1 and records[0][0] == "document" and not (
                isinstance(records[0][1], dict) and "id" in records[0][1]
                and {"text", "utterance", "question"} & set(records[0][1])):
            out.skipped.append((shown, "a JSON document that is not scenario records (dataset metadata?)"))
            continue
        new = 0
        missing_fields: dict[str, list[str]] = {}
        for where, rec in records:
            try:
                scenario = parse_public_record(file, where, rec, ground_truth)
            except ScenarioImportError as exc:
                if strict:
                    raise
                out.problems.append(exc)
                continue
            for name in ("category", "characteristic_form"):
                if isinstance(rec, dict) and _text(rec, name) is None:
                    missing_fields.setdefault(name, []).append(scenario.upstream_id or "?")
            if scenario.id in by_id:
                first, first_where = by_id[scenario.id]
                if " ".join(first.text.split()) != " ".join(scenario.text.split()):
                    problem = ScenarioImportError(file, where, f"the same id has a different text in {first_where}; "
                                                               "the first is kept", upstream_id=scenario.upstream_id,
                                                  field="text")
                    if strict:
                        raise problem
                    out.problems.append(problem)
                    continue
                by_id[scenario.id] = (_merge(first, scenario), first_where)
                continue
            by_id[scenario.id] = (scenario, f"{shown} {where}")
            order.append(scenario.id)
            new += 1
        out.files.append((shown, len(records), new))
        for name, ids in missing_fields.items():
            placeholder = MISSING_CATEGORY if name == "category" else MISSING_FORM
            out.notes.append(f"{shown}: {len(ids)} record(s) without {name} (ids {', '.join(ids[:12])}"
                             f"{', ...' if len(ids) > 12 else ''}) loaded with {placeholder!r}")
    out.scenarios = [by_id[i][0] for i in order]
    if not out.scenarios:
        detail = "; ".join(str(p) for p in out.problems[:3])
        raise ScenarioImportError(path, "file", "no scenario loaded (nothing imported; the existing scenarios are "
                                                f"unchanged){': ' + detail if detail else ''}")
    return out


def _merge(first: Scenario, later: Scenario) -> Scenario:
    """The same scenario read from two files: the first wins, the later fills what the first lacked."""
    a, b = first.model_dump(), later.model_dump()
    for key in ("note",):
        if not a.get(key) and b.get(key):
            a[key] = b[key]
    if a["category"] == MISSING_CATEGORY and b["category"] != MISSING_CATEGORY:
        a["category"] = b["category"]
        a["task_type"] = b["task_type"]
    if a["characteristic_form"] == MISSING_FORM and b["characteristic_form"] != MISSING_FORM:
        a["characteristic_form"] = b["characteristic_form"]
    if b.get("deterministic") and not a.get("deterministic"):
        a["deterministic"] = True
    rank = {"record": 0, "file": 1, "id range": 2}
    if rank.get(b.get("type_source") or "", 3) < rank.get(a.get("type_source") or "", 3):
        a["type"], a["type_source"] = b["type"], b["type_source"]
        if a.get("answer") is None:
            a["sub_agents"] = b["sub_agents"]
    return Scenario.model_validate(a)


def import_public_scenarios(path: str | Path) -> list[Scenario]:
    """Strict import of a public scenario file (JSON lines or a JSON array): the first bad record raises."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioImportError(path, "file", "no such file")
    return read_public_scenarios(path, strict=True).scenarios
