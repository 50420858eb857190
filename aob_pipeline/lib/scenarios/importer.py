"""Import public AssetOpsBench scenarios (JSON lines or a JSON array) as ``Scenario`` records.

Public record: ``{id: int, type: "IoT"|"FMSR"|"TSFM"|"Workorder"|"", text, category, characteristic_form,
deterministic?: bool, note?: str}``; type "" means an end-to-end (multi-agent) task. Other keys are ignored.

The public scenarios state their expected answer only in words (``characteristic_form``), so no answer is
computed: each imported scenario is ``source: imported`` with ``unanswerable_reason`` set, and judges
compare trajectories against the characteristic form. Ids become ``PUB-<id>`` so they never collide with
curated ones. Every problem raises ``ScenarioImportError`` naming the file, the line (JSON lines) or the
array index, the upstream id when known, and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aob_pipeline.lib.errors import AobError
from aob_pipeline.lib.scenarios.model import Scenario

TYPE_MAP = {"iot": "IoT", "fmsr": "FMSR", "tsfm": "TSFM", "workorder": "WO", "wo": "WO", "": "multi-agent"}
SUB_AGENT = {"IoT": ["iot"], "FMSR": ["fmsr"], "TSFM": ["tsfm"], "WO": ["wo"], "multi-agent": []}
UNANSWERABLE_REASON = (
    "imported public AssetOpsBench scenario: the expected answer is given only in words (characteristic_form), "
    "so none is computed; judges compare the trajectory with the characteristic form"
)
ID_PREFIX = "PUB-"


class ScenarioImportError(AobError, ValueError):
    """A malformed public scenario file: names the file, line or index, upstream id and field."""

    def __init__(self, path: Path | str, where: str, message: str, *, upstream_id: Any = None, field: str | None = None):
        parts = [f"{path}:{where}"]
        if upstream_id is not None:
            parts.append(f"scenario id {upstream_id!r}")
        if field:
            parts.append(f"field {field!r}")
        super().__init__(": ".join(parts) + f": {message}")
        self.path, self.where, self.upstream_id, self.field = str(path), where, upstream_id, field


def _records(path: Path) -> list[tuple[str, Any]]:
    """(where, record) pairs: 'line N' for JSON lines, 'index N' for a JSON array."""
    text = path.read_text(encoding="utf-8-sig")
    stripped = text.lstrip()
    if not stripped:
        return []
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioImportError(path, f"line {exc.lineno}", f"not valid JSON: {exc.msg}") from None
        return [(f"index {i}", rec) for i, rec in enumerate(data)]
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((f"line {n}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ScenarioImportError(path, f"line {n}", f"not valid JSON: {exc.msg}") from None
    return out


def _text_field(path: Path, where: str, rec: dict[str, Any], name: str, upstream_id: Any, required: bool = True) -> str | None:
    value = rec.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ScenarioImportError(path, where, f"must be a non-empty text, got {value!r}", upstream_id=upstream_id, field=name)
    return value.strip()


def parse_public_record(path: Path, where: str, rec: Any) -> Scenario:
    """One public record as an imported ``Scenario``."""
    if not isinstance(rec, dict):
        raise ScenarioImportError(path, where, f"expected an object, got {type(rec).__name__}")
    upstream_id = rec.get("id")
    if isinstance(upstream_id, str) and upstream_id.strip().isdigit():
        upstream_id = int(upstream_id)
    if not isinstance(upstream_id, int) or isinstance(upstream_id, bool) or upstream_id < 0:
        raise ScenarioImportError(path, where, f"must be a non-negative integer, got {rec.get('id')!r}", field="id")
    raw_type = rec.get("type", "")
    if raw_type is None:
        raw_type = ""
    if not isinstance(raw_type, str) or raw_type.strip().lower() not in TYPE_MAP:
        raise ScenarioImportError(path, where, f"must be IoT, FMSR, TSFM, Workorder or \"\" (end-to-end), got {raw_type!r}",
                                  upstream_id=upstream_id, field="type")
    scenario_type = TYPE_MAP[raw_type.strip().lower()]
    text = _text_field(path, where, rec, "text", upstream_id)
    category = _text_field(path, where, rec, "category", upstream_id)
    form = _text_field(path, where, rec, "characteristic_form", upstream_id)
    note = _text_field(path, where, rec, "note", upstream_id, required=False)
    deterministic = rec.get("deterministic", False)
    if not isinstance(deterministic, bool):
        raise ScenarioImportError(path, where, f"must be true or false, got {deterministic!r}",
                                  upstream_id=upstream_id, field="deterministic")
    return Scenario.model_validate({
        "id": f"{ID_PREFIX}{upstream_id}",
        "type": scenario_type,
        "text": text,
        "category": category,
        "task_type": "end-to-end" if scenario_type == "multi-agent" else category.lower(),
        "output_format": "free text",
        "characteristic_form": form,
        "sub_agents": SUB_AGENT[scenario_type],
        "deterministic": deterministic,
        "split": "public",
        "robustness": "none",
        "source": "imported",
        "unanswerable_reason": UNANSWERABLE_REASON,
        "note": note,
    })


def import_public_scenarios(path: str | Path) -> list[Scenario]:
    """Read a public AssetOpsBench scenario file (JSON lines or a JSON array) into imported scenarios."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioImportError(path, "file", "no such file")
    out: list[Scenario] = []
    seen: dict[str, str] = {}
    for where, rec in _records(path):
        scenario = parse_public_record(path, where, rec)
        if scenario.id in seen:
            raise ScenarioImportError(path, where, f"id repeats (first at {seen[scenario.id]})",
                                      upstream_id=rec.get("id"), field="id")
        seen[scenario.id] = where
        out.append(scenario)
    return out
