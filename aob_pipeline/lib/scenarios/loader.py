"""Load scenario files: ``assets_data/scenarios/*.yaml`` (curated) and imported public scenarios.

File layout (YAML)::

    defaults:            # optional: fields every entry of this file starts from (not applied to twins)
      type: IoT
      sub_agents: [iot]
    scenarios:
      - id: IOT-001
        text: ...
        ...
      - id: IOT-201      # a hidden paraphrase: inherits every field it does not set from IOT-001
        twin_of: IOT-001
        text: ...

A twin (an entry with ``twin_of``) starts from the scenario it paraphrases (after that one's file defaults),
so that the two ask the same thing and share the answer and the gold plan; its ``split`` defaults to hidden.

Imported public AssetOpsBench scenarios (``aob scenarios import``) are saved as YAML under
``$AOB_HOME/scenarios/imported/`` and loaded with the curated ones.

Every problem is reported as ``ScenarioFileError`` naming the file, the line, the scenario id and the field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aob_pipeline.lib.errors import AobError, UnknownScenario
from aob_pipeline.lib.scenarios.model import Scenario
from aob_pipeline.lib.settings import ASSETS_DATA, Settings

SCENARIOS_DIR = ASSETS_DATA / "scenarios"
_TWIN_OWN_FIELDS = ("id", "text", "twin_of", "split")
_RECORD_FIELD = re.compile(r"^(?:Value error, )?(?P<field>[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)*): (?P<rest>.*)$", re.S)


class ScenarioFileError(AobError, ValueError):
    """A malformed scenario file: names the file, the line, the scenario id and the field."""

    def __init__(self, path: Path | str, message: str, *, scenario_id: str | None = None,
                 field: str | None = None, line: int | None = None):
        self.path = str(path)
        self.scenario_id = scenario_id
        self.field = field
        self.line = line
        where = self.path + (f":{line}" if line else "")
        parts = [where]
        if scenario_id:
            parts.append(f"scenario {scenario_id!r}")
        if field:
            parts.append(f"field {field!r}")
        super().__init__(": ".join(parts) + f": {message}")


@dataclass(frozen=True)
class _RawEntry:
    path: Path
    line: int | None
    data: dict[str, Any]
    defaults: dict[str, Any]


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(record)"


def _read_yaml(path: Path) -> tuple[Any, dict[int, int]]:
    """The parsed document and, for each entry of its ``scenarios`` list, the 1-based line it starts on."""
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioFileError(path, f"not valid YAML: {exc}", line=mark.line + 1 if mark else None) from None
    lines: dict[int, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == "scenarios" and isinstance(value, yaml.SequenceNode):
                for i, item in enumerate(value.value):
                    lines[i] = item.start_mark.line + 1
    return data, lines


def read_scenario_entries(path: Path) -> list[_RawEntry]:
    """The raw entries of one file with their lines and the file defaults (no validation yet)."""
    path = Path(path)
    data, lines = _read_yaml(path)
    if data is None:
        return []
    if isinstance(data, list):
        data = {"scenarios": data}
    if not isinstance(data, dict) or "scenarios" not in data:
        raise ScenarioFileError(path, "expected a mapping with a 'scenarios' list (and optional 'defaults')")
    unknown = sorted(set(data) - {"defaults", "scenarios"})
    if unknown:
        raise ScenarioFileError(path, f"unknown top-level key(s) {', '.join(unknown)}; use 'defaults' and 'scenarios'")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ScenarioFileError(path, "'defaults' must be a mapping of scenario fields", field="defaults")
    entries = data["scenarios"] or []
    if not isinstance(entries, list):
        raise ScenarioFileError(path, "'scenarios' must be a list", field="scenarios")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ScenarioFileError(path, f"entry {i + 1} is a {type(entry).__name__}, not a mapping",
                                    line=lines.get(i))
        out.append(_RawEntry(path, lines.get(i), entry, defaults))
    return out


def _validate(entry: _RawEntry, record: dict[str, Any]) -> Scenario:
    sid = record.get("id") if isinstance(record.get("id"), str) else None
    try:
        return Scenario.model_validate(record)
    except ValidationError as exc:
        fields, details = [], []
        for e in exc.errors():
            field, msg = _field_path(e["loc"]), str(e["msg"])
            m = _RECORD_FIELD.match(msg)
            if not e["loc"] and m:  # record-level rules name their field first: "answer.format: ..."
                field, msg = m.group("field"), m.group("rest")
            fields.append(field)
            details.append(f"{field}: {msg}")
        raise ScenarioFileError(entry.path, "; ".join(details), scenario_id=sid or "(no id)",
                                field=fields[0], line=entry.line) from None


def build_scenarios(entries: Iterable[_RawEntry]) -> list[Scenario]:
    """Validate raw entries, resolving twins against the entries they paraphrase."""
    entries = list(entries)
    by_id: dict[str, _RawEntry] = {}
    for e in entries:
        sid = e.data.get("id")
        if isinstance(sid, str) and sid not in by_id:
            by_id[sid] = e
    out: list[Scenario] = []
    for e in entries:
        twin_of = e.data.get("twin_of")
        if twin_of is None:
            out.append(_validate(e, {**e.defaults, **e.data}))
            continue
        original = by_id.get(twin_of) if isinstance(twin_of, str) else None
        if original is None:
            near = difflib.get_close_matches(str(twin_of), list(by_id), n=3)
            hint = f" (close: {', '.join(near)})" if near else ""
            raise ScenarioFileError(e.path, f"twin_of names no known scenario {twin_of!r}{hint}",
                                    scenario_id=e.data.get("id"), field="twin_of", line=e.line)
        if original.data.get("twin_of"):
            raise ScenarioFileError(e.path, f"{twin_of!r} is itself a twin; point at the public original",
                                    scenario_id=e.data.get("id"), field="twin_of", line=e.line)
        base = {k: v for k, v in {**original.defaults, **original.data}.items() if k not in _TWIN_OWN_FIELDS}
        out.append(_validate(e, {"split": "hidden", **base, **e.data}))
    return out


def imported_dir(settings: Settings | None = None) -> Path:
    """Where ``aob scenarios import`` saves imported public scenarios."""
    return (settings or Settings.from_env()).home / "scenarios" / "imported"


CURATED_OFF_MARKER = "curated_off"


def curated_enabled(settings: Settings | None = None) -> bool:
    """Whether the curated scenarios (about the generated world) are loaded by default. `aob world import` and
    `aob demo --assetopsbench` turn them off (the world is upstream's public data: only its scenarios fit);
    `aob world build` and `aob demo` turn them on again."""
    return not ((settings or Settings.from_env()).home / "scenarios" / CURATED_OFF_MARKER).exists()


def set_curated_enabled(enabled: bool, settings: Settings | None = None) -> None:
    marker = (settings or Settings.from_env()).home / "scenarios" / CURATED_OFF_MARKER
    if enabled:
        marker.unlink(missing_ok=True)
    else:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("The world is imported from the public AssetOpsBench files: curated scenarios are not "
                          "loaded (aob world build turns them on again).\n")


def scenario_files(directory: Path | str | None = None, include_imported: bool = True,
                   settings: Settings | None = None) -> list[Path]:
    default = directory is None
    directory = Path(directory) if directory is not None else SCENARIOS_DIR
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if default and include_imported and not curated_enabled(settings):
        files = []
    if include_imported:
        extra = imported_dir(settings)
        if extra.is_dir():
            files += sorted(extra.glob("*.yaml"))
    return files


def load_scenarios(directory: Path | str | None = None, include_imported: bool = True,
                   settings: Settings | None = None) -> list[Scenario]:
    """Every scenario in ``directory`` (default ``assets_data/scenarios``) plus imported ones, in file order."""
    entries: list[_RawEntry] = []
    for path in scenario_files(directory, include_imported, settings):
        entries.extend(read_scenario_entries(path))
    return build_scenarios(entries)


def load_scenario_file(path: Path | str) -> list[Scenario]:
    """The scenarios of one file (twins must point inside the same file)."""
    return build_scenarios(read_scenario_entries(Path(path)))


def save_imported_scenarios(scenarios: list[Scenario], name: str, settings: Settings | None = None) -> Path:
    """Merge imported scenarios into ``$AOB_HOME/scenarios/imported/<name>.yaml``.

    A scenario already in the set (same id: the same upstream id) is replaced by the new reading, others are
    kept, so importing ``all_utterance.jsonl`` and then ``wo_utterance.json`` gives one set with each scenario
    once; the same ids are removed from the other imported sets. An empty list never replaces a set
    (ValueError)."""
    if not scenarios:
        raise ValueError("no scenarios to save: the imported set is left unchanged")
    target_dir = imported_dir(settings)
    target_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "imported"
    target = target_dir / f"{safe}.yaml"
    new_ids = {s.id for s in scenarios}
    merged: dict[str | None, dict[str, Any]] = {}  # an entry with no id is kept (keyed None), as it was read
    if target.is_file():
        for entry in read_scenario_entries(target):
            merged[entry.data.get("id")] = entry.data
    for s in scenarios:
        merged[s.id] = s.to_record()
    for other in sorted(target_dir.glob("*.yaml")):
        if other == target:
            continue
        entries = read_scenario_entries(other)
        kept = [e.data for e in entries if e.data.get("id") not in new_ids]
        if len(kept) != len(entries):
            _write_yaml(other, {"scenarios": kept}) if kept else other.unlink()
    _write_yaml(target, {"scenarios": list(merged.values())})
    return target


def _write_yaml(target: Path, payload: dict[str, Any]) -> None:
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    tmp.replace(target)


# ------------------------------------------------------------------------------------ CLI helpers


def list_scenarios(split: str | None = None, type: str | None = None, robustness: str | None = None,
                   directory: Path | str | None = None) -> list[Scenario]:
    """Scenarios (unrendered), optionally only one split, type or robustness kind; the CLI's `scenarios list`."""
    out = load_scenarios(directory)
    if split:
        out = [s for s in out if s.split == split]
    if type:
        out = [s for s in out if s.type.lower() == type.lower()]
    if robustness:
        out = [s for s in out if s.robustness == robustness]
    return out


def get_scenario(scenario_id: str, directory: Path | str | None = None) -> Scenario:
    """One scenario by id (case-insensitive); KeyError with close ids when unknown or ambiguous."""
    scenarios = load_scenarios(directory)
    hits = [s for s in scenarios if s.id.lower() == scenario_id.strip().lower()]
    if not hits:  # an imported scenario by its upstream id ('400', 'Q5')
        hits = [s for s in scenarios if s.upstream_id and s.upstream_id.lower() == scenario_id.strip().lower()]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise UnknownScenario(f"scenario id {scenario_id!r} is defined {len(hits)} times")
    near = difflib.get_close_matches(scenario_id.upper(), [s.id for s in scenarios], n=5)
    raise UnknownScenario(f"no scenario {scenario_id!r}" + (f"; close: {', '.join(near)}" if near else ""))
