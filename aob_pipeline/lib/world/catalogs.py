"""The engineering catalogs in ``assets_data/``: load, validate, cross-check, and shape as world tables.

Files (all written by us, tracked in git):

- ``sites.yaml``          sites with their climate (drives the generated weather)
- ``assets.yaml``         chillers and AHUs, their site, nameplate and operating parameters
- ``sensors.yaml``        sensor templates per equipment class (unit, range, formula of calculated points)
- ``failure_modes.yaml``  exactly 53 failure modes with their telemetry signatures
- ``failure_codes.csv``   primary and secondary failure codes (upstream AssetOpsBench style: MT010 / MT010a)
- ``alert_rules.yaml``    threshold rules over sensors

``load_catalogs()`` validates every entry with pydantic and cross-checks the files against each other.
All problems are collected and raised together as one :class:`CatalogError`; each line names the file, the
entry (YAML: 1-based entry number, its id and line; CSV: the line number) and the field, e.g.::

    assets_data/failure_modes.yaml: entry 12 (FM-CH-12, line 240): field 'effects[0].sensor': unknown sensor 'Supply Temp' for Chiller

``catalog_frames()`` turns the catalogs into the static world tables (sites, assets, sensors, failure_modes,
failure_mode_sensors, failure_codes, alert_rules), shaped exactly as ``WORLD_TABLES``.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from aob_pipeline.lib.settings import ASSETS_DATA, PROJECT_ROOT
from aob_pipeline.lib.world.schema import WORLD_TABLES

EXPECTED_FAILURE_MODES = 53
EQUIPMENT_CLASSES = ("Chiller", "AHU")
STATUS_SENSOR = {"Chiller": "Run Status", "AHU": "Supply Fan Status"}
"""The 0/1 sensor that says whether a unit of the class runs."""
SCHEDULE_SENSOR = {"Chiller": "Schedule", "AHU": "Occupancy Schedule"}
"""The 0/1 sensor that says whether the building automation system wants the unit to run."""

FILES = {
    "sites": "sites.yaml",
    "assets": "assets.yaml",
    "sensors": "sensors.yaml",
    "failure_modes": "failure_modes.yaml",
    "failure_codes": "failure_codes.csv",
    "alert_rules": "alert_rules.yaml",
}


class CatalogError(ValueError):
    """One or more catalog problems; ``problems`` holds one message per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in the catalogs:" if len(self.problems) > 1 else ""
        super().__init__("\n".join([head, *self.problems]) if head else self.problems[0])


# ----------------------------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Climate(_Model):
    annual_mean_f: float = Field(ge=-20, le=110)
    annual_amplitude_f: float = Field(ge=0, le=60)
    coldest_day_of_year: int = Field(ge=1, le=366)
    diurnal_amplitude_f: float = Field(ge=0, le=30)
    weather_swing_f: float = Field(ge=0, le=20)
    winter_dew_point_f: float = Field(ge=-40, le=85)
    summer_dew_point_f: float = Field(ge=-40, le=85)

    @field_validator("summer_dew_point_f")
    @classmethod
    def _summer_not_drier(cls, value: float, info: ValidationInfo) -> float:
        winter = info.data.get("winter_dew_point_f")
        if winter is not None and value < winter:
            raise ValueError(f"summer dew point ({value}) below winter dew point ({winter})")
        return value


class Site(_Model):
    site_id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")
    name: str = Field(min_length=1)
    city: str = Field(min_length=1)
    timezone: str
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    climate: Climate

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


class ChillerOperation(_Model):
    schedule: Literal["24x7", "weekdays_06_20", "extended_05_22"]
    chilled_water_setpoint_f: float = Field(ge=38, le=55)
    design_kw_per_ton: float = Field(gt=0.3, lt=1.5)
    low_ambient_lockout_f: float | None = Field(default=None, ge=20, le=80)
    peak_load_fraction: float = Field(gt=0.2, le=1.0)


class AhuOperation(_Model):
    schedule: Literal["24x7", "weekdays_06_20", "extended_05_22"]
    supply_air_setpoint_f: float = Field(ge=50, le=65)
    duct_static_setpoint_inh2o: float = Field(ge=0.5, le=3.0)
    fan_design_kw: float = Field(gt=0, le=300)
    min_outside_air_pct: float = Field(ge=0, le=100)
    peak_load_fraction: float = Field(gt=0.2, le=1.0)


class _AssetBase(_Model):
    asset_id: str
    name: str = Field(min_length=1)
    site_id: str
    install_date: dt.date
    manufacturer: str = Field(min_length=1)
    model: str = Field(min_length=1)
    capacity: float = Field(gt=0)


class ChillerAsset(_AssetBase):
    equipment_class: Literal["Chiller"]
    asset_id: str = Field(pattern=r"^CWC\d{5}$")
    capacity_unit: Literal["tons"]
    operation: ChillerOperation


class AhuAsset(_AssetBase):
    equipment_class: Literal["AHU"]
    asset_id: str = Field(pattern=r"^AHU\d{5}$")
    capacity_unit: Literal["CFM"]
    operation: AhuOperation


Asset = ChillerAsset | AhuAsset


class SensorTemplate(_Model):
    sensor: str = Field(min_length=1)
    component: str = Field(min_length=1)
    measurement: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    calculated: bool
    formula: str | None = Field(default=None, validate_default=True)
    inputs: tuple[str, ...] = Field(default=(), validate_default=True)
    min_value: float
    max_value: float
    noise_std: float = Field(ge=0)
    decimals: int = Field(ge=0, le=6)
    scales_with_capacity: bool = False
    description: str = Field(min_length=1)

    @field_validator("formula", "inputs")
    @classmethod
    def _only_when_calculated(cls, value, info: ValidationInfo):
        calculated = info.data.get("calculated")
        if calculated is True and not value:
            raise ValueError(f"a calculated sensor needs its {info.field_name}")
        if calculated is False and value:
            raise ValueError(f"{info.field_name} is only for calculated sensors (calculated: true)")
        return value

    @field_validator("max_value")
    @classmethod
    def _range_ordered(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_value")
        if low is not None and value <= low:
            raise ValueError(f"max_value ({value}) must be above min_value ({low})")
        return value


class FailureEffect(_Model):
    equipment_class: Literal["Chiller", "AHU"]
    sensor: str = Field(min_length=1)
    direction: Literal["increase", "decrease", "erratic"]
    shape: Literal["step", "ramp", "spike", "oscillation"]
    magnitude: float = Field(gt=0)
    while_running: bool = True
    rationale: str = Field(min_length=1)


_MODE_PREFIX = {"Chiller": "CH", "AHU": "AH", "HVAC": "HV"}


class FailureMode(_Model):
    equipment_class: Literal["Chiller", "AHU", "HVAC"]
    failure_mode_id: str = Field(pattern=r"^FM-(CH|AH|HV)-\d{2}$")
    component: str = Field(min_length=1)
    failure_mode: str = Field(min_length=1)
    degradation_mechanism: str = Field(min_length=1)
    influencing_factors: str = Field(min_length=1)
    detectability: Literal["high", "medium", "low"]
    primary_code: str
    secondary_code: str
    recommended_action: str = Field(min_length=1)
    relative_frequency: float = Field(gt=0, le=10)
    days_to_repair: tuple[float, float]
    repair_hours: float = Field(gt=0, le=500)
    effects: tuple[FailureEffect, ...] = ()

    @field_validator("days_to_repair")
    @classmethod
    def _ordered_days(cls, value: tuple[float, float]) -> tuple[float, float]:
        lo, hi = value
        if not (0 < lo <= hi <= 730):
            raise ValueError(f"need 0 < shortest <= longest <= 730 days, got [{lo}, {hi}]")
        return value

    @field_validator("failure_mode_id")
    @classmethod
    def _prefix_matches_class(cls, value: str, info: ValidationInfo) -> str:
        equipment_class = info.data.get("equipment_class")
        prefix = _MODE_PREFIX.get(equipment_class or "")
        if prefix and not value.startswith(f"FM-{prefix}-"):
            raise ValueError(f"id {value!r} should start with FM-{prefix}- for class {equipment_class}")
        return value

    def effects_for(self, equipment_class: str) -> tuple[FailureEffect, ...]:
        return tuple(e for e in self.effects if e.equipment_class == equipment_class)

    def applies_to(self, equipment_class: str) -> bool:
        """A Chiller/AHU mode applies to its class; an HVAC mode to any class it has effects for (or any, if none)."""
        if self.equipment_class == equipment_class:
            return True
        if self.equipment_class != "HVAC":
            return False
        return not self.effects or any(e.equipment_class == equipment_class for e in self.effects)


class FailureCode(_Model):
    category: str = Field(min_length=1)
    primary_code: str = Field(pattern=r"^[A-Z]{2}\d{3}$")
    primary_code_description: str = Field(min_length=1)
    secondary_code: str = Field(pattern=r"^[A-Z]{2}\d{3}[a-z]$")
    secondary_code_description: str = Field(min_length=1)

    @field_validator("secondary_code")
    @classmethod
    def _secondary_extends_primary(cls, value: str, info: ValidationInfo) -> str:
        primary = info.data.get("primary_code")
        if primary and not value.startswith(primary):
            raise ValueError(f"secondary code {value!r} must extend its primary code {primary!r}")
        return value


class AlertRule(_Model):
    rule_id: str = Field(pattern=r"^RUL\d{4}$")
    rule_name: str = Field(min_length=1)
    equipment_class: Literal["Chiller", "AHU"]
    sensor: str = Field(min_length=1)
    operator: Literal[">", "<", ">=", "<="]
    threshold: float
    relative_to: str | None = None
    """Optional second sensor: the rule then compares ``sensor - relative_to`` with the threshold
    (deviation from a setpoint, approach or range). Catalog-only: the alert_rules table states it in rule_logic."""
    min_duration_minutes: int = Field(ge=0, le=10080)
    active_when: Literal["running", "scheduled", "always"] = "running"
    rule_logic: str = Field(min_length=1)
    primary_code: str


# ----------------------------------------------------------------------------------------------- catalogs


@dataclass(frozen=True)
class Catalogs:
    """Validated catalogs. Lookups by id are precomputed; nothing here is mutable after loading."""

    root: Path
    sites: tuple[Site, ...]
    assets: tuple[Asset, ...]
    reference_capacity: Mapping[str, float]
    sensor_templates: Mapping[str, tuple[SensorTemplate, ...]]
    failure_modes: tuple[FailureMode, ...]
    failure_codes: tuple[FailureCode, ...]
    alert_rules: tuple[AlertRule, ...]
    _by_id: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Any] = {}
        index.update({f"site:{s.site_id}": s for s in self.sites})
        index.update({f"asset:{a.asset_id}": a for a in self.assets})
        index.update({f"mode:{m.failure_mode_id}": m for m in self.failure_modes})
        index.update({f"code:{c.secondary_code}": c for c in self.failure_codes})
        for cls, templates in self.sensor_templates.items():
            index.update({f"sensor:{cls}:{t.sensor}": t for t in templates})
        self._by_id.update(index)

    def site(self, site_id: str) -> Site:
        return self._lookup("site", site_id)

    def asset(self, asset_id: str) -> Asset:
        return self._lookup("asset", asset_id)

    def failure_mode(self, failure_mode_id: str) -> FailureMode:
        return self._lookup("mode", failure_mode_id)

    def failure_code(self, secondary_code: str) -> FailureCode:
        return self._lookup("code", secondary_code)

    def sensor(self, equipment_class: str, sensor: str) -> SensorTemplate:
        return self._lookup("sensor", f"{equipment_class}:{sensor}")

    def sensors_for(self, equipment_class: str) -> tuple[SensorTemplate, ...]:
        return self.sensor_templates[equipment_class]

    def capacity_scale(self, asset: Asset) -> float:
        """Factor from the reference unit of sensors.yaml to this asset (for extensive sensors)."""
        return float(asset.capacity) / float(self.reference_capacity[asset.equipment_class])

    def _lookup(self, kind: str, key: str):
        try:
            return self._by_id[f"{kind}:{key}"]
        except KeyError:
            raise KeyError(f"unknown {kind} {key!r}") from None


# ----------------------------------------------------------------------------------------------- loading


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def _field_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _pydantic_problems(prefix: str, exc: ValidationError, loc_prefix: tuple = ()) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(loc_prefix) + tuple(err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        value = err.get("input")
        if err["type"] not in ("missing",) and isinstance(value, (str, int, float, bool)) and not isinstance(value, dict):
            msg = f"{msg} (got {value!r})"
        where = f"field '{_field_path(loc)}'" if loc else "entry"
        problems.append(f"{prefix}: {where}: {msg}")
    return problems


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YamlFile:
    """A YAML catalog file: its data plus the line where each list entry starts."""

    def __init__(self, path: Path):
        self.path = path
        self.name = _display(path)
        if not path.is_file():
            raise CatalogError([f"{self.name}: file not found"])
        text = path.read_text(encoding="utf-8")
        loader = _YAML_LOADER(text)
        try:
            self.node = loader.get_single_node()
            data = loader.construct_document(self.node) if self.node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "?"
            raise CatalogError([f"{self.name}: {where}: invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
        finally:
            loader.dispose()
        if not isinstance(data, dict):
            raise CatalogError([f"{self.name}: expected a mapping at the top level"])
        self.data: dict[str, Any] = data

    def _child(self, node, key: str):
        if node is None or not isinstance(node, yaml.MappingNode):
            return None
        for k, v in node.value:
            if k.value == key:
                return v
        return None

    def entry_lines(self, *keys: str) -> list[int]:
        node = self.node
        for key in keys:
            node = self._child(node, key)
        if isinstance(node, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in node.value]
        return []

    def section(self, key: str, problems: list[str]) -> Any:
        if key not in self.data:
            problems.append(f"{self.name}: missing top-level key '{key}'")
            return None
        return self.data[key]


def _entry_label(file: str, index: int, ident: Any, lines: list[int], extra: str = "") -> str:
    parts = [str(ident)] if ident not in (None, "") else []
    if index < len(lines):
        parts.append(f"line {lines[index]}")
    label = f" ({', '.join(parts)})" if parts else ""
    return f"{file}: entry {index + 1}{extra}{label}"


def _validate_list(
    yf: _YamlFile, key: str, model: Any, id_field: str, problems: list[str], pick_model=None
) -> list[tuple[int, Any, str]]:
    """Validate the list under ``key``; returns (index, model, label) for the valid entries."""
    items = yf.section(key, problems)
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(f"{yf.name}: '{key}' must be a list")
        return []
    lines = yf.entry_lines(key)
    out = []
    for i, raw in enumerate(items):
        ident = raw.get(id_field) if isinstance(raw, dict) else None
        label = _entry_label(yf.name, i, ident, lines)
        if not isinstance(raw, dict):
            problems.append(f"{label}: expected a mapping, got {type(raw).__name__}")
            continue
        cls = pick_model(raw, label, problems) if pick_model else model
        if cls is None:
            continue
        try:
            out.append((i, cls.model_validate(raw), label))
        except ValidationError as exc:
            problems.extend(_pydantic_problems(label, exc))
    return out


def _duplicates(entries: list[tuple[int, Any, str]], attr: str, problems: list[str], what: str) -> None:
    seen: dict[Any, str] = {}
    for _, obj, label in entries:
        value = getattr(obj, attr)
        if value in seen:
            problems.append(f"{label}: field '{attr}': duplicate {what} {value!r} (first at {seen[value]})")
        else:
            seen[value] = label.split(": ", 1)[1]


def _pick_asset_model(raw: dict, label: str, problems: list[str]):
    cls = raw.get("equipment_class")
    if cls == "Chiller":
        return ChillerAsset
    if cls == "AHU":
        return AhuAsset
    problems.append(f"{label}: field 'equipment_class': must be 'Chiller' or 'AHU' (got {cls!r})")
    return None


def _load_codes(path: Path, problems: list[str]) -> list[tuple[int, FailureCode, str]]:
    name = _display(path)
    if not path.is_file():
        problems.append(f"{name}: file not found")
        return []
    expected = list(FailureCode.model_fields)
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        if missing or extra:
            detail = "; ".join(
                s for s in (f"missing column(s) {', '.join(missing)}" if missing else "",
                            f"unexpected column(s) {', '.join(extra)}" if extra else "") if s
            )
            problems.append(f"{name}: line 1 (header): {detail}")
            return []
        for row in reader:
            line = reader.line_num
            label = f"{name}: line {line} ({row.get('secondary_code') or '?'})"
            if None in row or any(v is None for v in row.values()):
                problems.append(f"{label}: expected {len(expected)} fields")
                continue
            try:
                out.append((line, FailureCode.model_validate(row), label))
            except ValidationError as exc:
                problems.extend(_pydantic_problems(label, exc))
    return out


def load_catalogs(root: Path = ASSETS_DATA) -> Catalogs:
    """Load and validate every catalog under ``root``; raise :class:`CatalogError` listing all problems."""
    root = Path(root)
    problems: list[str] = []

    def open_yaml(kind: str) -> _YamlFile | None:
        try:
            return _YamlFile(root / FILES[kind])
        except CatalogError as exc:
            problems.extend(exc.problems)
            return None

    # --- sites
    sites_file = open_yaml("sites")
    sites = _validate_list(sites_file, "sites", Site, "site_id", problems) if sites_file else []
    _duplicates(sites, "site_id", problems, "site id")
    site_ids = {s.site_id for _, s, _ in sites}
    if sites_file and sites and "MAIN" not in site_ids:
        problems.append(f"{sites_file.name}: no site with site_id 'MAIN' (one site must be MAIN)")

    # --- sensors
    sensors_file = open_yaml("sensors")
    templates: dict[str, tuple[SensorTemplate, ...]] = {}
    known_names: dict[str, set[str]] = {}
    reference_capacity: dict[str, float] = {}
    if sensors_file:
        ref = sensors_file.section("reference_capacity", problems)
        if isinstance(ref, dict):
            for cls in EQUIPMENT_CLASSES:
                value = ref.get(cls)
                if not isinstance(value, (int, float)) or value <= 0:
                    problems.append(f"{sensors_file.name}: field 'reference_capacity.{cls}': must be a positive number (got {value!r})")
                else:
                    reference_capacity[cls] = float(value)
        elif ref is not None:
            problems.append(f"{sensors_file.name}: field 'reference_capacity': must be a mapping of class to capacity")
        section = sensors_file.section("sensor_templates", problems)
        if isinstance(section, dict):
            for cls in section:
                if cls not in EQUIPMENT_CLASSES:
                    problems.append(f"{sensors_file.name}: field 'sensor_templates.{cls}': unknown equipment class (expected Chiller or AHU)")
            for cls in EQUIPMENT_CLASSES:
                items = section.get(cls)
                if not isinstance(items, list) or not items:
                    problems.append(f"{sensors_file.name}: field 'sensor_templates.{cls}': must be a non-empty list of sensors")
                    continue
                lines = sensors_file.entry_lines("sensor_templates", cls)
                known_names[cls] = {r["sensor"] for r in items if isinstance(r, dict) and isinstance(r.get("sensor"), str)}
                valid: list[tuple[int, SensorTemplate, str]] = []
                for i, raw in enumerate(items):
                    ident = raw.get("sensor") if isinstance(raw, dict) else None
                    label = _entry_label(sensors_file.name, i, ident, lines, extra=f" of {cls}")
                    if not isinstance(raw, dict):
                        problems.append(f"{label}: expected a mapping")
                        continue
                    try:
                        valid.append((i, SensorTemplate.model_validate(raw), label))
                    except ValidationError as exc:
                        problems.extend(_pydantic_problems(label, exc))
                _duplicates(valid, "sensor", problems, f"{cls} sensor")
                names = known_names[cls]
                for _, t, label in valid:
                    for j, inp in enumerate(t.inputs):
                        if inp not in names:
                            problems.append(f"{label}: field 'inputs[{j}]': unknown sensor {inp!r} for {cls}")
                        elif inp == t.sensor:
                            problems.append(f"{label}: field 'inputs[{j}]': a sensor cannot be its own input")
                if STATUS_SENSOR[cls] not in names:
                    problems.append(f"{sensors_file.name}: sensor_templates.{cls}: the status sensor {STATUS_SENSOR[cls]!r} is required")
                templates[cls] = tuple(t for _, t, _ in valid)
        elif section is not None:
            problems.append(f"{sensors_file.name}: field 'sensor_templates': must be a mapping of class to sensor list")

    # --- assets
    assets_file = open_yaml("assets")
    assets = _validate_list(assets_file, "assets", None, "asset_id", problems, _pick_asset_model) if assets_file else []
    _duplicates(assets, "asset_id", problems, "asset id")
    _duplicates(assets, "name", problems, "asset name")
    for _, a, label in assets:
        if sites and a.site_id not in site_ids:
            problems.append(f"{label}: field 'site_id': unknown site {a.site_id!r} (known: {', '.join(sorted(site_ids))})")

    # --- failure codes
    codes = _load_codes(root / FILES["failure_codes"], problems)
    _duplicates(codes, "secondary_code", problems, "secondary code")
    primary_desc: dict[str, tuple[str, str, str]] = {}
    for _, c, label in codes:
        known = primary_desc.setdefault(c.primary_code, (c.primary_code_description, c.category, label))
        if known[:2] != (c.primary_code_description, c.category):
            problems.append(
                f"{label}: field 'primary_code_description': primary code {c.primary_code!r} is described "
                f"differently than at {known[2].split(': ', 1)[1]} (category and description must agree)"
            )
    secondary_to_primary = {c.secondary_code: c.primary_code for _, c, _ in codes}
    primary_codes = set(primary_desc)

    # --- failure modes
    modes_file = open_yaml("failure_modes")
    modes = _validate_list(modes_file, "failure_modes", FailureMode, "failure_mode_id", problems) if modes_file else []
    _duplicates(modes, "failure_mode_id", problems, "failure mode id")
    _duplicates(modes, "failure_mode", problems, "failure mode name")
    if modes_file and isinstance(modes_file.data.get("failure_modes"), list):
        count = len(modes_file.data["failure_modes"])
        if count != EXPECTED_FAILURE_MODES:
            problems.append(f"{modes_file.name}: field 'failure_modes': expected exactly {EXPECTED_FAILURE_MODES} failure modes, found {count}")
    for _, m, label in modes:
        if codes:
            if m.primary_code not in primary_codes:
                problems.append(f"{label}: field 'primary_code': unknown failure code {m.primary_code!r}")
            if m.secondary_code not in secondary_to_primary:
                problems.append(f"{label}: field 'secondary_code': unknown failure code {m.secondary_code!r}")
            elif secondary_to_primary[m.secondary_code] != m.primary_code:
                problems.append(
                    f"{label}: field 'secondary_code': {m.secondary_code!r} belongs to primary code "
                    f"{secondary_to_primary[m.secondary_code]!r}, not {m.primary_code!r}"
                )
        problems.extend(_check_effects(m, label, templates, known_names))

    # --- alert rules
    rules_file = open_yaml("alert_rules")
    rules = _validate_list(rules_file, "alert_rules", AlertRule, "rule_id", problems) if rules_file else []
    _duplicates(rules, "rule_id", problems, "rule id")
    for _, r, label in rules:
        names = known_names.get(r.equipment_class, set())
        if known_names and r.sensor not in names:
            problems.append(f"{label}: field 'sensor': unknown sensor {r.sensor!r} for {r.equipment_class}")
        if known_names and r.relative_to is not None and r.relative_to not in names:
            problems.append(f"{label}: field 'relative_to': unknown sensor {r.relative_to!r} for {r.equipment_class}")
        if codes and r.primary_code not in primary_codes:
            problems.append(f"{label}: field 'primary_code': unknown failure code {r.primary_code!r}")
        if r.active_when == "scheduled" and known_names and SCHEDULE_SENSOR[r.equipment_class] not in names:
            problems.append(
                f"{label}: field 'active_when': 'scheduled' needs the {SCHEDULE_SENSOR[r.equipment_class]!r} sensor, "
                f"which {r.equipment_class} has not"
            )

    if problems:
        raise CatalogError(problems)
    return Catalogs(
        root=root,
        sites=tuple(s for _, s, _ in sites),
        assets=tuple(a for _, a, _ in assets),
        reference_capacity=reference_capacity,
        sensor_templates=templates,
        failure_modes=tuple(m for _, m, _ in modes),
        failure_codes=tuple(c for _, c, _ in codes),
        alert_rules=tuple(r for _, r, _ in rules),
    )


def _check_effects(
    mode: FailureMode,
    label: str,
    templates: Mapping[str, tuple[SensorTemplate, ...]],
    known_names: Mapping[str, set[str]],
) -> list[str]:
    """Effects name known sensors of their class, once each; calculated ones have a measured driver.

    ``known_names`` also holds sensors whose template is itself invalid, so one bad template is reported
    once, not again for every failure mode that mentions it.
    """
    problems: list[str] = []
    if not known_names:
        return problems
    seen: dict[str, int] = {}
    checked: list[tuple[int, FailureEffect, SensorTemplate]] = []
    for i, e in enumerate(mode.effects):
        where = f"{label}: field 'effects[{i}]"
        if mode.equipment_class != "HVAC" and e.equipment_class != mode.equipment_class:
            problems.append(f"{where}.equipment_class': a {mode.equipment_class} mode can only affect {mode.equipment_class} sensors (got {e.equipment_class!r})")
            continue
        if e.sensor not in known_names.get(e.equipment_class, set()):
            problems.append(f"{where}.sensor': unknown sensor {e.sensor!r} for {e.equipment_class}")
            continue
        if e.sensor in seen:
            problems.append(f"{where}.sensor': sensor {e.sensor!r} already listed at effects[{seen[e.sensor]}]")
            continue
        seen[e.sensor] = i
        by_name = {t.sensor: t for t in templates.get(e.equipment_class, ())}
        if e.sensor in by_name:
            checked.append((i, e, by_name[e.sensor]))
    if problems:
        return problems  # driver checks would only echo the problems above
    for i, e, template in checked:
        where = f"{label}: field 'effects[{i}]"
        by_name = {t.sensor: t for t in templates.get(e.equipment_class, ())}
        if template.calculated and not _has_measured_driver(mode, e.equipment_class, template, by_name):
            problems.append(
                f"{where}.sensor': {e.sensor!r} is calculated from {', '.join(template.inputs)}; "
                "list the measured input effects that move it"
            )
        if e.sensor == STATUS_SENSOR[e.equipment_class] and e.magnitude != 1:
            problems.append(f"{where}.magnitude': a status sensor effect must have magnitude 1 (got {e.magnitude})")
    return problems


def _has_measured_driver(mode: FailureMode, cls: str, template: SensorTemplate, by_name: Mapping[str, SensorTemplate]) -> bool:
    affected = {e.sensor for e in mode.effects if e.equipment_class == cls}
    if STATUS_SENSOR[cls] in affected:
        return True
    frontier, seen = list(template.inputs), set()
    while frontier:
        name = frontier.pop()
        if name in seen:
            continue
        if name not in by_name:
            return True  # its template is invalid and already reported: nothing to check against
        seen.add(name)
        if by_name[name].calculated:
            frontier.extend(by_name[name].inputs)
        elif name in affected:
            return True
    return False


# ----------------------------------------------------------------------------------------------- frames


def _frame(table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = WORLD_TABLES[table].column_names
    return pd.DataFrame(rows, columns=columns)


def catalog_frames(catalogs: Catalogs) -> dict[str, pd.DataFrame]:
    """The static world tables from the catalogs, shaped exactly as ``WORLD_TABLES`` (same columns, same order).

    ``sensors`` has one row per asset x sensor; ranges of extensive sensors are scaled to the asset's capacity.
    """
    sites = _frame("sites", [
        {"site_id": s.site_id, "name": s.name, "city": s.city, "timezone": s.timezone,
         "latitude": s.latitude, "longitude": s.longitude}
        for s in catalogs.sites
    ])
    assets = _frame("assets", [
        {"asset_id": a.asset_id, "name": a.name, "equipment_class": a.equipment_class, "site_id": a.site_id,
         "install_date": pd.Timestamp(a.install_date), "manufacturer": a.manufacturer, "model": a.model,
         "capacity": float(a.capacity), "capacity_unit": a.capacity_unit}
        for a in catalogs.assets
    ])
    assets["install_date"] = pd.to_datetime(assets["install_date"])
    sensor_rows = []
    for a in sorted(catalogs.assets, key=lambda a: a.asset_id):
        scale = catalogs.capacity_scale(a)
        for t in sorted(catalogs.sensors_for(a.equipment_class), key=lambda t: t.sensor):
            factor = scale if t.scales_with_capacity else 1.0
            formula = t.formula
            if formula and "capacity" in formula:
                formula = formula.replace("capacity", f"capacity ({a.capacity:g} {a.capacity_unit})")
            sensor_rows.append({
                "asset_id": a.asset_id, "sensor": t.sensor, "component": t.component, "measurement": t.measurement,
                "unit": t.unit, "calculated": t.calculated, "formula": formula,
                "min_value": round(t.min_value * factor, 3), "max_value": round(t.max_value * factor, 3),
                "description": t.description,
            })
    sensors = _frame("sensors", sensor_rows)
    modes = _frame("failure_modes", [
        {k: getattr(m, k) for k in WORLD_TABLES["failure_modes"].column_names} for m in catalogs.failure_modes
    ])
    mode_sensors = _frame("failure_mode_sensors", [
        {"failure_mode_id": m.failure_mode_id, "equipment_class": e.equipment_class, "sensor": e.sensor,
         "direction": e.direction, "shape": e.shape, "magnitude": float(e.magnitude), "rationale": e.rationale}
        for m in catalogs.failure_modes for e in m.effects
    ])
    codes = _frame("failure_codes", [c.model_dump() for c in catalogs.failure_codes])
    rules = _frame("alert_rules", [
        {k: getattr(r, k) for k in WORLD_TABLES["alert_rules"].column_names} for r in catalogs.alert_rules
    ])
    rules["min_duration_minutes"] = rules["min_duration_minutes"].astype("int64")
    code_text = {c.primary_code: c.primary_code_description for c in catalogs.failure_codes}
    rule_codes = _frame("alert_rule_codes", [
        {"rule_id": r.rule_id, "primary_code": r.primary_code, "primary_code_description": code_text.get(r.primary_code)}
        for r in catalogs.alert_rules if r.primary_code
    ])
    rule_meters = _frame("alert_rule_meters", [{"rule_id": r.rule_id, "meter": r.sensor} for r in catalogs.alert_rules])
    return {
        "alert_rule_codes": rule_codes,
        "alert_rule_meters": rule_meters,
        "anomaly_failure_codes": _frame("anomaly_failure_codes", []),
        "sites": sites,
        "assets": assets,
        "sensors": sensors,
        "failure_modes": modes,
        "failure_mode_sensors": mode_sensors,
        "failure_codes": codes,
        "alert_rules": rules,
    }

