"""Plain-SQL models in ``dbt_like_sql/``: discovery, dependency inference, build order and materialisation.

A model is one ``.sql`` file holding a single ``SELECT`` (no Jinja, no templating) under a layer folder
(``staging/``, ``marts/``). Its name is the file stem; its layer is the folder name. It may read the world
tables (``WORLD_TABLES``) and other models, by name. The tables a model reads are found with DuckDB's own
parser (``json_serialize_sql``), so joins, sub-queries, set operations and CTEs are understood exactly:
a CTE name is not a dependency, and a CTE that shadows a table hides it.

Leading ``--`` comment lines are the model's description (shown in the Dagster UI). Its columns are documented
in a ``schema.yml`` next to the models of its layer, in dbt's layout (``models: [{name, columns: [{name,
data_type, description}]}]``); ``sql_model_tables`` turns both into the table declarations the analysts'
warehouse and ``docs/WAREHOUSE.md`` are documented from.

Every problem is reported as a ``SqlModelError`` that names the file (and the line where it helps), e.g.
``dbt_like_sql/marts/x.sql:3: reads unknown table 'telemetri' (did you mean 'telemetry'?)``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from aob_pipeline.lib.errors import AobError
from aob_pipeline.lib.settings import SQL_MODELS_DIR
from aob_pipeline.lib.warehouse.schema import Column, Table
from aob_pipeline.lib.world.schema import WORLD_TABLES

# Schemas under which a world table or model may be referenced (``main.telemetry`` is ``telemetry``).
_LOCAL_SCHEMAS = frozenset({"", "main"})

# Layers in the order they are built when the dependency graph leaves the choice free; others follow, by name.
LAYER_ORDER = ("staging", "intermediate", "marts")


class SqlModelError(AobError, ValueError):
    """A SQL model cannot be discovered, ordered or built. The message names the file."""


@dataclass(frozen=True)
class TableReference:
    """A table named in a model's FROM/JOIN clauses (after CTEs are resolved away)."""

    name: str
    """Name as written, schema-qualified when it was (e.g. ``main.telemetry``)."""
    line: int
    """1-based line in the SQL file where the reference appears."""
    local_name: str | None
    """The bare table name when the reference points into the warehouse's main schema, else None."""


@dataclass(frozen=True)
class SqlModel:
    """One SQL model file.

    ``deps`` are the world tables and models it reads (sorted, lower-case, each once).
    """

    name: str
    layer: str
    path: Path
    sql: str
    deps: tuple[str, ...]
    display_path: str = field(default="", compare=False)

    @property
    def description(self) -> str:
        """The leading ``--`` comment lines of the file, joined; empty when there are none."""
        return leading_comment(self.sql)

    @property
    def code_version(self) -> str:
        """A hash of the SQL text: it changes exactly when the model's logic changes."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()[:16]

    def __str__(self) -> str:
        return self.display_path or str(self.path)


@dataclass(frozen=True)
class ModelBuild:
    """What ``build_model`` produced: the table's name, row count and (column, DuckDB type) pairs."""

    name: str
    row_count: int
    columns: tuple[tuple[str, str], ...]


def leading_comment(sql: str) -> str:
    """The ``--`` comment lines at the top of ``sql`` (blank lines allowed between them), without the dashes."""
    lines: list[str] = []
    for raw in sql.splitlines():
        stripped = raw.strip()
        if not stripped:
            if lines:
                lines.append("")
            continue
        if not stripped.startswith("--"):
            break
        lines.append(stripped[2:].removeprefix(" ").rstrip())
    return "\n".join(lines).strip()


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.parent).as_posix()
    except ValueError:
        return path.as_posix()


def _line_of(sql: str, offset: Any) -> int:
    try:
        position = int(offset)
    except (TypeError, ValueError):
        return 1
    position = max(0, min(position, len(sql)))
    return sql.count("\n", 0, position) + 1


def _serialize(sql: str, where: str) -> dict:
    """DuckDB's parse tree of ``sql`` as JSON; raises SqlModelError for syntax errors or non-SELECTs."""
    con = duckdb.connect()
    try:
        raw = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchall()[0][0]
    finally:
        con.close()
    tree = json.loads(raw)
    if tree.get("error"):
        message = tree.get("error_message", "unknown parser error")
        line = ""
        if "position" in tree:
            line = f":{_line_of(sql, tree['position'])}"
        if tree.get("error_type") == "not implemented":
            message = "a model must be a single SELECT statement (no DDL, DML or PRAGMA): " + message
        raise SqlModelError(f"{where}{line}: cannot parse SQL: {message}")
    statements = tree.get("statements", [])
    if len(statements) != 1:
        raise SqlModelError(
            f"{where}: a model must hold exactly one SELECT statement, found {len(statements)}"
        )
    return statements[0]


def _walk_references(node: Any, ctes: frozenset[str], sql: str) -> Iterator[TableReference]:
    if isinstance(node, list):
        for item in node:
            yield from _walk_references(item, ctes, sql)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    if isinstance(cte_map, dict) and cte_map.get("map"):
        # CTE names are visible in the whole query node, including the CTE bodies (recursive CTEs).
        ctes = ctes | {str(entry["key"]).lower() for entry in cte_map["map"]}
    if node.get("type") == "BASE_TABLE" and "table_name" in node:
        table = str(node["table_name"])
        schema = str(node.get("schema_name") or "")
        catalog = str(node.get("catalog_name") or "")
        line = _line_of(sql, node.get("query_location"))
        qualified = ".".join(p for p in (catalog, schema, table) if p)
        if not schema and not catalog and table.lower() in ctes:
            return
        local = table.lower() if schema.lower() in _LOCAL_SCHEMAS and not catalog else None
        yield TableReference(name=qualified, line=line, local_name=local)
        return
    for value in node.values():
        yield from _walk_references(value, ctes, sql)


def table_references(sql: str, where: str = "<sql>") -> list[TableReference]:
    """Every table ``sql`` reads, in order of appearance, with CTE names resolved away.

    Table functions (``range``, ``unnest``, ``read_parquet`` ...) are not table references.
    ``where`` names the source in error messages.
    """
    statement = _serialize(sql, where)
    return list(_walk_references(statement, frozenset(), sql))


def read_tables(sql: str) -> set[str]:
    """The set of (lower-case, unqualified) tables ``sql`` reads; schema-qualified foreign names kept as written."""
    return {ref.local_name or ref.name for ref in table_references(sql)}


def _unknown_table_error(where: str, ref: TableReference, known: Iterable[str]) -> SqlModelError:
    candidates = sorted(known)
    close = difflib.get_close_matches((ref.local_name or ref.name).lower(), candidates, n=1, cutoff=0.75)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return SqlModelError(
        f"{where}:{ref.line}: reads unknown table '{ref.name}'{hint}; a model may read only world tables "
        f"({', '.join(sorted(WORLD_TABLES))}) and other models"
    )


def topological_order(models: Sequence[SqlModel]) -> list[SqlModel]:
    """Models ordered so that each comes after the models it reads; where the graph leaves the choice free,
    by layer (``LAYER_ORDER``) and then name, so the order is deterministic.

    Raises SqlModelError naming the files on a dependency cycle.
    """
    by_name = {m.name: m for m in models}
    if len(by_name) != len(models):
        names = [m.name for m in models]
        twice = sorted({n for n in names if names.count(n) > 1})
        raise SqlModelError(f"duplicate model name(s): {', '.join(twice)}")

    def rank(name: str) -> tuple[int, str, str]:
        layer = by_name[name].layer
        return (LAYER_ORDER.index(layer) if layer in LAYER_ORDER else len(LAYER_ORDER), layer, name)

    waiting = {m.name: {d for d in m.deps if d in by_name} for m in models}
    ordered: list[SqlModel] = []
    ready = sorted((name for name, deps in waiting.items() if not deps), key=rank)
    while ready:
        name = ready.pop(0)
        ordered.append(by_name[name])
        del waiting[name]
        released = [other for other, deps in waiting.items() if name in deps]
        for other in released:
            waiting[other].discard(name)
            if not waiting[other]:
                ready.append(other)
        ready.sort(key=rank)
    if waiting:
        cycle = _find_cycle(waiting)
        files = ", ".join(str(by_name[n]) for n in cycle[:-1])
        raise SqlModelError(f"{by_name[cycle[0]]}: dependency cycle {' -> '.join(cycle)} (files: {files})")
    return ordered


def _find_cycle(waiting: dict[str, set[str]]) -> list[str]:
    start = sorted(waiting)[0]
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = sorted(waiting[node])[0]
    return path[seen[node]:] + [node]


def discover_models(
    root: Path = SQL_MODELS_DIR,
    external_tables: Iterable[str] = tuple(WORLD_TABLES),
) -> list[SqlModel]:
    """Find every ``<root>/<layer>/<name>.sql``, infer what each reads, and return them in build order.

    ``external_tables`` are the tables that exist before any model runs (the world tables).
    Raises SqlModelError, naming the file, for: SQL that does not parse or is not one SELECT, a read of an
    unknown table, two models with the same name, a model named like a world table, and dependency cycles.
    """
    root = Path(root)
    if not root.is_dir():
        raise SqlModelError(f"{root}: SQL models folder does not exist")
    external = {t.lower() for t in external_tables}
    files = sorted(p for p in root.glob("*/*.sql") if p.is_file())

    seen: dict[str, str] = {}
    drafts: list[tuple[str, str, Path, str, str]] = []
    for path in files:
        where = _display(path, root)
        name = path.stem.lower()
        if not name.isidentifier():
            raise SqlModelError(f"{where}: model name '{path.stem}' is not a valid SQL identifier (use letters, digits, _)")
        if name in external:
            raise SqlModelError(f"{where}: model name '{name}' collides with the world table of the same name")
        if name in seen:
            raise SqlModelError(f"{where}: duplicate model name '{name}' (also defined in {seen[name]})")
        seen[name] = where
        try:
            sql = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SqlModelError(f"{where}: not UTF-8 text ({exc})") from exc
        if not sql.strip():
            raise SqlModelError(f"{where}: file is empty; a model must hold one SELECT statement")
        drafts.append((name, path.parent.name, path, sql, where))

    known = external | set(seen)
    models: list[SqlModel] = []
    for name, layer, path, sql, where in drafts:
        deps: set[str] = set()
        for ref in table_references(sql, where):
            if ref.local_name is None or ref.local_name not in known:
                raise _unknown_table_error(where, ref, known)
            if ref.local_name == name:
                raise SqlModelError(f"{where}:{ref.line}: model '{name}' reads itself")
            deps.add(ref.local_name)
        models.append(SqlModel(name, layer, path, sql, tuple(sorted(deps)), display_path=where))
    return topological_order(models)


MODEL_DOCS_FILE = "schema.yml"
"""Per layer folder: the column documentation of its models (dbt's ``schema.yml`` layout)."""

_MODEL_KEYS = frozenset({"name", "columns"})
_COLUMN_KEYS = frozenset({"name", "data_type", "description"})


def load_model_docs(root: Path = SQL_MODELS_DIR) -> dict[str, tuple[Column, ...]]:
    """The documented columns of every model, by model name, from ``<root>/<layer>/schema.yml``.

    Raises SqlModelError naming the file for: invalid YAML, a model listed twice or in a file of another layer
    than its SQL, an unknown key (a model's description belongs in the leading comment of its SQL file), or a
    column without a name, type or description, or listed twice.
    """
    root = Path(root)
    docs: dict[str, tuple[Column, ...]] = {}
    seen: dict[str, str] = {}
    for path in sorted(root.glob(f"*/{MODEL_DOCS_FILE}")):
        where = _display(path, root)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise SqlModelError(f"{where}: not valid YAML: {exc}") from exc
        entries = data.get("models", []) if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise SqlModelError(f"{where}: expected a mapping with a list under 'models'")
        for i, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise SqlModelError(f"{where}: model entry {i}: expected a mapping with a 'name'")
            name = entry["name"].lower()
            label = f"{where}: model '{name}'"
            unknown = sorted(set(entry) - _MODEL_KEYS)
            if unknown:
                hint = (" (a model's description is the leading -- comment of its .sql file)"
                        if "description" in unknown else "")
                raise SqlModelError(f"{label}: unknown key(s) {', '.join(unknown)}{hint}")
            if name in seen:
                raise SqlModelError(f"{label}: documented twice (also in {seen[name]})")
            if not (path.parent / f"{name}.sql").is_file():
                raise SqlModelError(f"{label}: no model {path.parent.name}/{name}.sql next to this file")
            seen[name] = where
            columns: list[Column] = []
            for j, col in enumerate(entry.get("columns") or [], start=1):
                if not isinstance(col, dict):
                    raise SqlModelError(f"{label}: column {j}: expected a mapping")
                col_name = col.get("name")
                unknown = sorted(set(col) - _COLUMN_KEYS)
                missing = [k for k in ("name", "data_type", "description") if not str(col.get(k) or "").strip()]
                if unknown or missing:
                    problem = f"unknown key(s) {', '.join(unknown)}" if unknown else f"no {' or '.join(missing)}"
                    raise SqlModelError(f"{label}: column {j} ({col_name or '?'}): {problem}")
                if any(c.name == col_name for c in columns):
                    raise SqlModelError(f"{label}: column '{col_name}' is listed twice")
                columns.append(Column(str(col_name), str(col["data_type"]), str(col["description"]).strip()))
            docs[name] = tuple(columns)
    return docs


def sql_model_tables(root: Path = SQL_MODELS_DIR) -> dict[str, Table]:
    """A table declaration per SQL model, in build order: description = the leading comment of its SQL file (up
    to its indented notes on single columns, which ``schema.yml`` holds), columns = its ``schema.yml`` entry (none
    when undocumented: the warehouse then shows '(undocumented)')."""
    docs = load_model_docs(root)
    tables = {}
    for model in discover_models(root):
        lines = []
        for line in model.description.splitlines():
            if line.startswith((" ", "\t")):
                break
            lines.append(line)
        description = " ".join(" ".join(lines).split()) or f"SQL model {model.display_path}."
        tables[model.name] = Table(model.name, description, docs.get(model.name, ()))
    return tables


def _strip_trailing_semicolon(sql: str) -> str:
    """The statement without a final ``;`` (and any comments after it), so it can be wrapped in DDL."""
    tokens = [t for t in duckdb.tokenize(sql) if t[1] != duckdb.token_type.comment]
    if tokens:
        position, kind = tokens[-1]
        if kind == duckdb.token_type.operator and sql[position:].lstrip().startswith(";"):
            return sql[:position]
    return sql


def build_model(con: duckdb.DuckDBPyConnection, model: SqlModel) -> ModelBuild:
    """Materialise ``model`` as a table (``CREATE OR REPLACE TABLE <name> AS <sql>``), atomically.

    The upstream tables must already exist on ``con``. Returns the row count and column types.
    A DuckDB error is re-raised as SqlModelError naming the file.
    """
    body = _strip_trailing_semicolon(model.sql)
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{model.name}" AS\n{body}\n')
        row_count = con.execute(f'SELECT count(*) FROM "{model.name}"').fetchall()[0][0]
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [model.name],
        ).fetchall()
    except duckdb.Error as exc:
        raise SqlModelError(f"{model}: failed to build model '{model.name}': {exc}") from exc
    return ModelBuild(model.name, int(row_count), tuple((c, t) for c, t in columns))


def build_models(con: duckdb.DuckDBPyConnection, models: Sequence[SqlModel] | None = None) -> dict[str, ModelBuild]:
    """Build ``models`` (default: every discovered model) in dependency order; returns builds by name."""
    ordered = topological_order(models if models is not None else discover_models())
    return {m.name: build_model(con, m) for m in ordered}


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_cell: int = 60) -> str:
    """A GitHub-flavoured markdown table (for Dagster metadata); cells are escaped and shortened."""

    def cell(value: Any) -> str:
        if value is None:
            text = "NULL"
        elif isinstance(value, float):
            text = f"{value:.6g}"
        else:
            text = str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= max_cell else text[: max_cell - 1] + "…"

    head = "| " + " | ".join(cell(c) for c in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def preview_markdown(con: duckdb.DuckDBPyConnection, table: str, limit: int = 10) -> str:
    """The first ``limit`` rows of ``table`` as a markdown table."""
    cursor = con.execute(f'SELECT * FROM "{table}" LIMIT {int(limit)}')
    columns = [d[0] for d in cursor.description]
    return markdown_table(columns, cursor.fetchall())
