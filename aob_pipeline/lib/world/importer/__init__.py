"""Import the public AssetOpsBench sample files into the world tables.

``import_assetopsbench(path)`` reads a folder (searched recursively) or a single file and returns an
``ImportResult``: one pandas frame for every table in ``WORLD_TABLES`` (shaped as declared, ready for
``store_world``) and an ``ImportManifest`` that says which files were recognised, which were skipped and
why, and what the import had to decide on the way. The importer never writes anything: the caller stores
the frames in one transaction, so a failed import leaves the previous world untouched.

Files are recognised by their header (CSV) or document shape (JSON), never by their name, because the
upstream names vary between releases:

==================  ==========================================================================  ==========
kind                columns / shape                                                              feeds
==================  ==========================================================================  ==========
work_orders         wo_id, wo_description, collection, primary_code, primary_code_description,  work_orders
                    secondary_code, secondary_code_description, equipment_id, equipment_name,
                    preventive (TRUE/FALSE), work_priority, actual_finish (M/D/YY H:MM),
                    duration (H:MM), actual_labor_hours (H:MM)
events              event_id, event_group, event_category, event_type, description,              events
                    equipment_id, equipment_name, event_time (YYYY-MM-DD HH:MM:SS), note
alert_events        equipment_id, equipment_name, rule_id, start_time, end_time (M/D/YY H:MM)    alerts
alert_rules         rule_id, rule_name, rule_logic                                               alert_rules
alert_rule_codes    rule_id, rule_name, primary_code, primary_code_description                   alert_rules
alert_rule_meters   rule_id, rule_name, meter                                                    alert_rules
anomaly_events      timestamp (M/D/YY H:MM), KPI, asset_name, value, upper_bound, lower_bound,   anomalies
                    anomaly_score
failure_modes       Equipment, Failure Mode, Degradation Mechanism, Influencing Factors          failure_modes
failure_codes       category, primary_code, primary_code_description, secondary_code,           failure_codes
                    secondary_code_description
meters              meter, component, measurement, unit, description, calculated, formula        sensors
telemetry           JSON array (or JSON lines) of ``{asset_id: "Chiller 6", timestamp:           telemetry
                    "2020-06-01T00:00:00", "Chiller 6 <Sensor Name>": number, ...}``
==================  ==========================================================================  ==========

Column names are matched case-insensitively, with spaces and hyphens read as underscores. Mapping rules:

- equipment_id → ``asset_id``; actual_finish → ``finished_at``; duration / actual_labor_hours ("H:MM",
  hours may exceed 24) → ``duration_hours`` / ``labor_hours`` as floats; work_priority → ``priority``.
- Telemetry documents become long rows (asset_id, sensor, ts, value); the sensor is the key without its
  "<asset> " prefix; an absent (or null) key gives no row; timestamps keep their seconds of jitter.
- ``assets`` is built from everything seen: equipment ids and names of work orders, events and alerts,
  then telemetry and anomaly asset names. A name that matches a known equipment name (e.g. "Chiller 13"
  for CWC04013) takes that id; otherwise the asset gets a stable id derived from its name
  ("Chiller 6" → ``CHILLER_6``). The class (Chiller/AHU) is inferred from ids, names and the work
  orders' collection; every asset sits at site ``MAIN``.
- ``sensors`` has one row per (asset, sensor) seen in telemetry, described by the meters file where it
  names the sensor, else with unit ``unknown``.
- ``failure_modes`` get stable ids per equipment class in file order (FM-CH-01, FM-AHU-01, FM-HVAC-01);
  ``failure_mode_sensors`` stays empty (the public file states no sensor effects).
- ``alert_rules`` joins the rules file with its two mappings; operator, threshold and duration are read
  from the rule logic ("Supply Temperature < 40 for 15 minutes"). A rule whose logic states no such
  condition is left out of ``alert_rules`` (its alerts stay) and listed in the manifest.
- ``events`` holds the events file plus every work order, alert and anomaly it does not already hold
  (same group, asset and time, or the work order's id), so nothing appears twice.
- ``injected_faults`` is empty: public data carries no ground truth.
- ``world_meta``: source ``imported:<path>``, scale ``imported``, seed empty, telemetry_start/end (only
  when telemetry was imported), now (telemetry end, else the latest event), built_at.

Parsing is DuckDB's: ``csv_files`` (``read_csv`` with declared columns and ``store_rejects``; lines of bad records and
values from DuckDB's reject tables), ``formats`` (dates, durations, booleans and numbers as ``try_strptime`` /
``TRY_CAST`` expressions over whole columns), ``telemetry`` (``read_json_objects`` + ``json_each`` for the JSON shapes,
``read_csv`` + ``UNPIVOT`` for the wide CSV). ``kinds`` recognises files, ``rules`` reads rule logic, ``build`` assembles
the world, ``report`` holds the error and the manifest, ``files`` sends each file to its reader.

Malformed input raises ``WorldImportError`` naming the file, the line (as an editor counts it, header =
line 1) and the field, e.g. ``wo.csv: line 7: field 'actual_finish': cannot parse '13/45/21 9:00' as
M/D/YY H:MM``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aob_pipeline.lib.world.importer.build import _WorldBuilder
from aob_pipeline.lib.world.importer.files import _Collected, _read_one_file
from aob_pipeline.lib.world.importer.formats import (
    parse_bool,
    parse_float,
    parse_hours,
    parse_int,
    parse_iso_timestamp,
    parse_mdy_hm,
)
from aob_pipeline.lib.world.importer.kinds import (
    CSV_KINDS,
    TELEMETRY_KIND,
    WIDE_TELEMETRY_KIND,
    normalise_column,
    recognise_header,
)
from aob_pipeline.lib.world.importer.report import (
    DroppedRow,
    ImportManifest,
    ImportResult,
    RecognisedFile,
    SkippedFile,
    WorldImportError,
)
from aob_pipeline.lib.world.importer.rules import parse_rule_condition, parse_rule_duration_minutes
from aob_pipeline.lib.world.schema import WORLD_TABLES

logger = logging.getLogger(__name__)

DEFAULT_EPOCH_TIMEZONE = "America/New_York"


def import_assetopsbench(path: str | Path, *, encoding: str | None = None,
                         epoch_timezone: str = DEFAULT_EPOCH_TIMEZONE) -> ImportResult:
    """Read the public AssetOpsBench files under ``path`` (a folder, searched recursively, or one file).

    Returns frames for every world table (tables no file provides are empty, with the declared columns)
    and a manifest of recognised and skipped files, per-file rows in and kept, and every row not kept with
    its reason. Raises ``WorldImportError`` for a malformed, empty or unreadable file, text that is not UTF-8
    (unless ``encoding`` names the encoding to read every file with), a missing path, or when no file is
    recognised at all. Telemetry timestamps given as epoch seconds are read as wall-clock time in
    ``epoch_timezone`` (upstream's JSON-lines file equals its ISO-timestamped JSON in US Eastern time).
    Writes nothing.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise WorldImportError(str(root), "no such file or folder")
    root = root.resolve()
    if encoding is not None:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise WorldImportError(str(root), f"unknown encoding '{encoding}'") from None
    try:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(epoch_timezone)
    except Exception:
        raise WorldImportError(str(root), f"unknown time zone '{epoch_timezone}'") from None
    manifest = ImportManifest(source=str(root))
    collected = _Collected(encoding=encoding, epoch_tz=tz)

    try:
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        for file_path in files:
            display = file_path.name if root.is_file() else file_path.relative_to(root).as_posix()
            outcome = _read_one_file(file_path, display, collected, manifest)
            if isinstance(outcome, SkippedFile):
                manifest.skipped.append(outcome)
                logger.info("skipped %s: %s", outcome.path, outcome.reason)
            else:
                manifest.recognised.append(outcome)
                logger.info("recognised %s as %s (%d rows)", outcome.path, outcome.kind, outcome.rows)

        if not manifest.recognised:
            reasons = "; ".join(f"{s.path}: {s.reason}" for s in manifest.skipped) or "the folder is empty"
            raise WorldImportError(str(root), f"no AssetOpsBench file recognised ({reasons})")

        frames = _WorldBuilder(collected, manifest, root).build()
    finally:
        collected.close()
    manifest.settle_counts()
    manifest.table_rows = {name: len(frames[name]) for name in WORLD_TABLES}
    for note in manifest.notes:
        logger.info("import note: %s", note)
    return ImportResult(frames=frames, manifest=manifest)



__all__ = [
    "CSV_KINDS",
    "DroppedRow",
    "ImportManifest",
    "ImportResult",
    "RecognisedFile",
    "SkippedFile",
    "TELEMETRY_KIND",
    "WIDE_TELEMETRY_KIND",
    "WorldImportError",
    "import_assetopsbench",
    "normalise_column",
    "parse_bool",
    "parse_float",
    "parse_hours",
    "parse_int",
    "parse_iso_timestamp",
    "parse_mdy_hm",
    "parse_rule_condition",
    "parse_rule_duration_minutes",
    "recognise_header",
]
