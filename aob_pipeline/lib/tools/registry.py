"""The tool registry: every domain tool by name, argument validation, and the call envelope.

Tools come from the ``TOOLS`` list of each group module (``iot``, ``fmsr``, ``tsfm``, ``wo``,
``knowledge``), imported on first use. A group module that does not exist yet is skipped; one that exists
but fails to import raises, so a broken tool module is never silently missing.

``call_tool`` never raises: it returns ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": {"code", "message", "hint"?}}``, with every value JSON-safe.
"""

from __future__ import annotations

import difflib
import importlib
import json
import logging
import math
import re
from typing import Any

import jsonschema

from aob_pipeline.lib.tools.base import TOOL_GROUPS, ToolContext, ToolError, ToolSpec, jsonable

log = logging.getLogger(__name__)

_REGISTRY: dict[str, ToolSpec] | None = None
_VALIDATORS: dict[str, jsonschema.protocols.Validator] = {}


def _load() -> dict[str, ToolSpec]:
    global _REGISTRY
    if _REGISTRY is None:
        tools: dict[str, ToolSpec] = {}
        for group in TOOL_GROUPS:
            module_name = f"aob_pipeline.lib.tools.{group}"
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name:
                    log.debug("tool group %s has no module yet; skipped", group)
                    continue
                raise
            for spec in getattr(module, "TOOLS", []):
                if spec.name in tools:
                    raise ValueError(f"tool {spec.name!r} is defined twice ({module_name} and an earlier group)")
                if spec.group != group:
                    raise ValueError(f"tool {spec.name!r} in {module_name} declares group {spec.group!r}")
                jsonschema.Draft202012Validator.check_schema(spec.parameters)
                tools[spec.name] = spec
        _REGISTRY = tools
    return _REGISTRY


def reset_registry() -> None:
    """Forget the loaded tools (tests and hot reload)."""
    global _REGISTRY
    _REGISTRY = None
    _VALIDATORS.clear()


def all_tools(groups: list[str] | tuple[str, ...] | str | None = None) -> list[ToolSpec]:
    """Every registered tool in group order (iot, fmsr, tsfm, wo, knowledge), optionally only some groups."""
    tools = list(_load().values())
    if groups is None:
        return tools
    wanted = {groups} if isinstance(groups, str) else set(groups)
    unknown = sorted(wanted - set(TOOL_GROUPS))
    if unknown:
        raise ValueError(f"unknown tool group(s) {', '.join(unknown)}; groups are {', '.join(TOOL_GROUPS)}")
    return [t for t in tools if t.group in wanted]


def get_tool(name: str) -> ToolSpec:
    """The tool called ``name``; ``ToolError('unknown_tool')`` with the closest names otherwise."""
    tools = _load()
    if name in tools:
        return tools[name]
    near = difflib.get_close_matches(str(name), list(tools), n=3, cutoff=0.4)
    hint = (f"did you mean {', '.join(near)}? " if near else "") + f"{len(tools)} tools exist: " + ", ".join(tools)
    raise ToolError("unknown_tool", f"no tool named {name!r}", hint)


def _validator(spec: ToolSpec) -> jsonschema.protocols.Validator:
    if spec.name not in _VALIDATORS:
        _VALIDATORS[spec.name] = jsonschema.Draft202012Validator(spec.parameters)
    return _VALIDATORS[spec.name]


def _describe_arguments(spec: ToolSpec) -> str:
    props = spec.parameters.get("properties", {})
    required = set(spec.parameters.get("required", []))
    if not props:
        return f"{spec.name} takes no arguments"
    parts = []
    for name, prop in props.items():
        kind = prop.get("type", "any")
        if "enum" in prop:
            kind += " in " + "|".join(map(str, prop["enum"]))
        parts.append(f"{name} ({kind}{', required' if name in required else ''})")
    return f"{spec.name} takes: " + "; ".join(parts)


def _problem(spec: ToolSpec, error: jsonschema.ValidationError) -> str:
    """One validation problem in words, naming the argument."""
    props = spec.parameters.get("properties", {})
    if error.validator == "additionalProperties":
        extra = [k for k in error.instance if k not in props] if isinstance(error.instance, dict) else []
        msgs = []
        for k in extra:
            near = difflib.get_close_matches(k, list(props), n=1, cutoff=0.5)
            msgs.append(f"unknown argument '{k}'" + (f" (did you mean '{near[0]}'?)" if near else ""))
        return "; ".join(msgs) or error.message
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        return f"missing required argument '{missing[0]}'" if missing else error.message
    if error.validator == "type" and not error.path:
        return f"arguments must be a JSON object, got {type(error.instance).__name__}"
    field = ".".join(str(p) for p in error.path) or "(arguments)"
    return f"argument '{field}': {error.message}"


def validate_arguments(name: str, args: Any) -> list[str]:
    """Problems with ``args`` for tool ``name`` (empty when valid). Checks the JSON schema only."""
    try:
        spec = get_tool(name)
    except ToolError as exc:
        return [exc.message + (f" ({exc.hint})" if exc.hint else "")]
    if args is None:
        args = {}
    errors = sorted(_validator(spec).iter_errors(args), key=lambda e: (list(map(str, e.path)), e.message))
    return [_problem(spec, e) for e in errors]


def describe_tools(groups: list[str] | tuple[str, ...] | str | None = None) -> list[dict[str, Any]]:
    """Name, group, description and argument schema of each tool (for ``aob tools list`` and agents)."""
    return [
        {"name": t.name, "group": t.group, "description": t.description, "schema": t.parameters}
        for t in all_tools(groups)
    ]


def _finite(value: Any) -> Any:
    """Replace NaN and infinities (invalid JSON) by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


_PATHLIKE = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-~ ]+){2,}")


def _scrub(text: str, ctx: ToolContext | None, all_paths: bool = False) -> str:
    """A message without the snapshot's location (and, for internal errors, without any file-system path)."""
    world_dir = getattr(ctx, "world_dir", None)
    if world_dir is not None:
        text = text.replace(str(world_dir), "<world>").replace(world_dir.as_posix(), "<world>")
    return _PATHLIKE.sub("<path>", text) if all_paths else text


MEMO_LIMIT = 50_000
"""At most this many memoised envelopes per context (a batch of 13 agents × 222 scenarios makes ~20,000 calls)."""


def call_tool(ctx: ToolContext, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``args``, run tool ``name`` and return the envelope; never raises.

    Stateless tools are memoised per context (``ctx.memo``): the world snapshot is immutable while a context
    lives, so a repeated call (another agent, another trial on the same scenario) returns a fresh copy of the
    envelope it gave before — the same result, without the DuckDB query and the frame work. Internal errors are
    never memoised; stateful tools (``ToolSpec.stateful``) always run.
    """
    memo = getattr(ctx, "memo", None)
    key = None
    if memo is not None and isinstance(args, dict):
        try:
            key = (str(name), json.dumps(args, sort_keys=True, allow_nan=False))
        except (TypeError, ValueError):
            key = None
        if key is not None:
            hit = memo.get(key)
            if hit is not None:
                return json.loads(hit)
    envelope = _call_tool(ctx, name, args)
    if key is not None and memo is not None and len(memo) < MEMO_LIMIT:
        spec = (_REGISTRY or {}).get(name)
        internal = not envelope["ok"] and envelope["error"].get("code") == "internal_error"
        if spec is not None and not spec.stateful and not internal:
            try:
                memo[key] = json.dumps(envelope, allow_nan=False)
            except (TypeError, ValueError):
                pass
    return envelope


def _call_tool(ctx: ToolContext, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        spec = get_tool(name)
        if args is None:
            args = {}
        problems = validate_arguments(name, args)
        if problems:
            raise ToolError("invalid_arguments", "; ".join(problems), _describe_arguments(spec))
        result = spec.func(ctx, **args)
        return {"ok": True, "result": _finite(jsonable(result))}
    except ToolError as exc:
        error = exc.to_dict()
        error["message"] = _scrub(error["message"], ctx)
        if "hint" in error:
            error["hint"] = _scrub(error["hint"], ctx)
        return {"ok": False, "error": error}
    except Exception as exc:  # noqa: BLE001 - the envelope must hold every failure
        log.exception("tool %s failed", name)
        message = _scrub(f"{type(exc).__name__}: {exc}", ctx, all_paths=True)
        return {"ok": False, "error": {
            "code": "internal_error",
            "message": f"tool {name} failed: {message}"[:500],
            "hint": "this is a fault of the tool, not of the arguments; try another approach or report it",
        }}
