"""Import trajectories recorded elsewhere: the three public AssetOpsBench shapes and our own schema.

Shapes, detected per record (a file may be one JSON object, a JSON array, an object with a
``trajectories`` array, or JSON lines; a folder means every ``*.json`` / ``*.jsonl`` file in it):

- ``aob`` — our own ``Trajectory`` (``run_id``, ``agent_id``, ``scenario_id``, ``status``, ``steps`` ...).
- ``react_steps`` — (a) ReAct steps: ``{task, trajectory: [{step, thought, action, action_input,
  observation, state}], final_answer}``. A ``Finish`` action is the final answer; other actions are tool
  calls whose ``action_input`` is parsed (JSON object, ``key=value, ...`` or kept as ``{"input": text}``);
  a ``state`` saying the action was invalid becomes the step's error. ``action`` may also be a list (several
  calls in one step: names, or objects ``{name|tool|action, input|arguments}``), with ``action_input`` and
  ``observation`` as parallel lists or shared.
- ``plan_execute`` — (b) plan-execute: ``{id, text, runtime, trajectory: [{task_number, task_description,
  agent_name, response, logs?}]}``. The tasks become the ``plan``; each task is a planner message, the
  sub-agent's own ReAct steps (``logs.trajectroy_log`` as upstream spells it, or ``trajectory_log``) and
  the sub-agent's response message; the final answer is ``final_answer``/``answer`` or the last response.
- ``atif`` — the Agent Trajectory Interchange Format that upstream's Harbor adapter exports
  (``{schema_version: "ATIF-v1.x", session_id, agent: {name, version, model_name}, steps: [{step_id, source:
  system|user|agent, message, reasoning_content, tool_calls: [{tool_call_id, function_name, arguments}],
  observation: {results: [{source_call_id, content}]}, metrics: {prompt_tokens, completion_tokens, cost_usd}}],
  final_metrics}``). The first user message is the request; an agent step's reasoning is a thought, its tool
  calls are tool-call steps whose observation is the result with the same ``source_call_id``; the last agent
  message without tool calls is the final answer.
- ``sdk_turns`` — (c) SDK turns: ``{run_id, scenario_id, runner, model, question, answer, trajectory:
  [{index, text, tool_calls, input_tokens, output_tokens}]}``. Each turn's text is a thought (or a message
  when it calls no tool) carrying the turn's tokens; each tool call (``name``/``tool``, ``arguments``/
  ``input``/``args``, ``output``/``result``/``observation``, ``error``) is a tool-call step.

Foreign records have no agent id: ``agent_id`` (the caller's) wins, else the record's ``agent_id``, else
``<runner>:<model>`` for SDK turns, else ``imported``. Their scenario id is the record's ``scenario_id`` /
``id`` (mapped through ``scenario_ids`` when given), else the record's text looked up in
``scenario_ids_by_text``, else the only number in the file name (``Q_12_trajectory.json`` → ``12``). Trials
count up per (agent, scenario) in file order unless the record gives one. Every error names the file,
the record (and line, for JSON lines) and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aob_pipeline.lib.errors import AobError
from aob_pipeline.lib.trajectories.schema import Status, Step, Totals, Trajectory, is_status, make_run_id

SHAPES = ("aob", "react_steps", "plan_execute", "sdk_turns", "atif")
FINISH_ACTIONS = {"finish", "final answer", "final_answer", "finalanswer", "answer"}
DEFAULT_IMPORTED_AGENT = "imported"


class TrajectoryImportError(AobError, ValueError):
    """A record that cannot be imported; the message names the file, the record and the field."""

    def __init__(self, file: str, record: str, field: str | None, problem: str):
        where = f"{file}: {record}" + (f": field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.record = record
        self.field = field
        self.problem = problem


class _FieldError(Exception):
    def __init__(self, field: str | None, problem: str):
        super().__init__(problem)
        self.field = field
        self.problem = problem


# ----------------------------------------------------------------------------------------- reading


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".jsonl")
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise TrajectoryImportError(str(path), "folder", None, "holds no .json or .jsonl file")
        return files
    if not path.exists():
        raise TrajectoryImportError(str(path), "file", None, "does not exist")
    return [path]


def read_records(path: Path) -> list[tuple[str, Any]]:
    """(label, record) pairs of one file: ``record 3`` for JSON, ``record 3 (line 5)`` for JSON lines."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TrajectoryImportError(name, "file", None, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise TrajectoryImportError(name, "file", None, "is empty")
    whole_error: json.JSONDecodeError | None = None
    if path.suffix.lower() != ".jsonl":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            whole_error = exc
        else:
            if isinstance(data, list):
                return [(f"record {i}", r) for i, r in enumerate(data)]
            if isinstance(data, dict) and isinstance(data.get("trajectories"), list) and "steps" not in data:
                return [(f"record {i}", r) for i, r in enumerate(data["trajectories"])]
            return [("record 0", data)]
    lines = text.splitlines()
    non_empty = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if whole_error is not None and len(non_empty) < 2:
        raise TrajectoryImportError(
            name, "file", None,
            f"is not valid JSON ({whole_error.msg} at line {whole_error.lineno} column {whole_error.colno})",
        )
    out = []
    for i, (n, line) in enumerate(non_empty):
        try:
            out.append((f"record {i} (line {n})", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise TrajectoryImportError(
                name, f"record {i} (line {n})", None,
                f"is neither a JSON document nor JSON lines: line {n} is not valid JSON ({exc.msg} at column {exc.colno})",
            ) from None
    return out


# ------------------------------------------------------------------------------------------ shapes


def detect_shape(record: Any) -> str | None:
    """``aob``, ``react_steps``, ``plan_execute``, ``sdk_turns``, or None when the record fits none."""
    if not isinstance(record, dict):
        return None
    if "steps" in record and "agent_id" in record and "status" in record:
        return "aob"
    if isinstance(record.get("steps"), list) and (
            str(record.get("schema_version", "")).upper().startswith("ATIF")
            or (isinstance(record.get("agent"), dict) and "session_id" in record)):
        return "atif"
    traj = record.get("trajectory")
    if not isinstance(traj, list):
        return None
    items = [t for t in traj if isinstance(t, dict)]
    keys = set().union(*(t.keys() for t in items)) if items else set()
    if keys & {"task_number", "task_description"} or ("agent_name" in keys and "response" in keys):
        return "plan_execute"
    if "tool_calls" in keys or keys & {"input_tokens", "output_tokens"} or (
            "question" in record and ("runner" in record or "run_id" in record)):
        return "sdk_turns"
    if keys & {"thought", "action", "action_input", "observation"} or "task" in record:
        return "react_steps"
    if not items and ("final_answer" in record or "task" in record):
        return "react_steps"
    return None


_KV = re.compile(r"\s*([A-Za-z_][\w\-]*)\s*=\s*(.*?)\s*(?=,\s*[A-Za-z_][\w\-]*\s*=|$)", re.S)


def parse_action_input(value: Any) -> dict[str, Any]:
    """Tool arguments from a ReAct ``action_input``: a JSON object, ``k=v, k2=v2`` text, or ``{"input": text}``."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return {"input": value}
    text = value.strip()
    if not text or text in ("{}", "None", "null"):
        return {}
    if text[0] in "{[":
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        if parsed is not None:
            return {"input": parsed}
    if "=" in text and re.match(r"\s*[A-Za-z_][\w\-]*\s*=", text):
        pairs = _KV.findall(text)
        if pairs:
            return {k: v.strip().strip("'\"") for k, v in pairs}
    return {"input": text}


def parse_observation(value: Any) -> Any:
    """An observation as JSON when it is JSON text, else the text itself (None for empty)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[0] in "{[":
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return value
        return value
    return value


def _text(record: dict[str, Any], field: str, required: bool = False) -> str | None:
    value = record.get(field)
    if value is None:
        if required:
            raise _FieldError(field, "is missing")
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _FieldError(field, f"must be text, got {type(value).__name__}")
    return value


def _items(record: dict[str, Any], field: str = "trajectory") -> list[dict[str, Any]]:
    value = record.get(field)
    if not isinstance(value, list):
        raise _FieldError(field, f"must be a list, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _FieldError(f"{field}[{i}]", f"must be an object, got {type(item).__name__}")
    return value


def _int(value: Any, field: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise _FieldError(field, "must be a whole number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _FieldError(field, f"must be a whole number, got {value!r}") from None
    if number < 0 or number != int(number):
        raise _FieldError(field, f"must be a non-negative whole number, got {value!r}")
    return int(number)


class _Builder:
    """Accumulates steps with consecutive indexes."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.pending_in = 0
        self.pending_out = 0

    def add(self, field: str, **fields: Any) -> None:
        if self.pending_in or self.pending_out:
            fields["tokens_in"] = fields.get("tokens_in", 0) + self.pending_in
            fields["tokens_out"] = fields.get("tokens_out", 0) + self.pending_out
            self.pending_in = self.pending_out = 0
        try:
            self.steps.append(Step(index=len(self.steps), **fields))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise _FieldError(f"{field}.{loc}" if loc else field, err["msg"]) from None


def _react_steps(builder: _Builder, items: list[dict[str, Any]], field: str, agent_name: str) -> str | None:
    """Append ReAct steps; returns the Finish action's answer, if any."""
    finish: str | None = None
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        thought = item.get("thought")
        if thought is not None and not isinstance(thought, str):
            raise _FieldError(f"{where}.thought", f"must be text, got {type(thought).__name__}")
        if thought and thought.strip():
            builder.add(where, kind="thought", content=thought.strip(), agent_name=agent_name)
        action = item.get("action")
        if isinstance(action, list):
            finish = _react_action_list(builder, item, where, agent_name) or finish
            continue
        if action is not None and not isinstance(action, str):
            raise _FieldError(f"{where}.action", f"must be text (a tool name) or a list of them, got {type(action).__name__}")
        action = (action or "").strip()
        if not action:
            continue
        if action.lower() in FINISH_ACTIONS:
            raw = item.get("action_input")
            finish = raw if isinstance(raw, str) else (None if raw is None else json.dumps(raw))
            continue
        _react_call(builder, where, agent_name, action, item.get("action_input"), item.get("observation"),
                    item.get("state"))
    return finish


def _react_call(builder: _Builder, where: str, agent_name: str, action: str, action_input: Any, raw_observation: Any,
                state: Any) -> None:
    error = None
    if isinstance(state, str) and re.search(r"invalid|error|fail|loop", state, re.I):
        error = {"code": "agent_state", "message": state}
    observation = parse_observation(raw_observation)
    if error is None and isinstance(observation, dict) and isinstance(observation.get("error"), (str, dict)):
        err = observation["error"]
        error = err if isinstance(err, dict) else {"code": "tool_error", "message": err}
    builder.add(where, kind="tool_call", tool=action, arguments=parse_action_input(action_input),
                observation=None if error else observation, error=error, agent_name=agent_name)


def _react_action_list(builder: _Builder, item: dict[str, Any], where: str, agent_name: str) -> str | None:
    """A ReAct step whose ``action`` is a list: one call per element (a name, or an object with its input)."""
    actions = item["action"]
    inputs, observations = item.get("action_input"), item.get("observation")
    finish = None
    for k, act in enumerate(actions):
        at = f"{where}.action[{k}]"
        if isinstance(act, dict):
            name = act.get("name", act.get("tool", act.get("action")))
            arg = next((act[key] for key in ("input", "arguments", "action_input", "args") if key in act), None)
            obs = act.get("observation", act.get("output"))
        else:
            name, arg, obs = act, None, None
        if not isinstance(name, str) or not name.strip():
            raise _FieldError(at, f"must name a tool (text, or an object with 'name'), got {act!r}")
        if arg is None:
            arg = inputs[k] if isinstance(inputs, list) and k < len(inputs) else (
                None if isinstance(inputs, list) else inputs)
        if obs is None:
            obs = observations[k] if isinstance(observations, list) and k < len(observations) else (
                None if isinstance(observations, list) else observations)
        if name.strip().lower() in FINISH_ACTIONS:
            finish = arg if isinstance(arg, str) else (None if arg is None else json.dumps(arg))
            continue
        _react_call(builder, at, agent_name, name.strip(), arg, obs, item.get("state"))
    return finish


def _answer(text: str | None) -> str | None:
    """A final answer, or None when it is missing or blank."""
    return text if text is not None and text.strip() else None


def _status(record: dict[str, Any], final: str | None) -> tuple[Status, str | None]:
    status = record.get("status")
    if is_status(status):
        reason = record.get("status_reason") or record.get("error")
        return status, (str(reason) if reason and status != "completed" else None)
    if final is not None and final.strip():
        return "completed", None
    return "failed", "the imported record has no final answer"


def _convert_react(record: dict[str, Any]) -> dict[str, Any]:
    items = _items(record)
    text = _text(record, "task") or _text(record, "question") or _text(record, "text")
    builder = _Builder()
    finish = _react_steps(builder, items, "trajectory", "agent")
    final = _answer(_text(record, "final_answer")) or _answer(finish)
    if final is not None:
        builder.add("final_answer", kind="final", content=final)
    return {"text": text, "steps": builder.steps, "final": final, "orchestration": "single", "plan": None,
            "wall": None, "model": _text(record, "model"), "extra": (0, 0)}


def _convert_plan_execute(record: dict[str, Any]) -> dict[str, Any]:
    items = _items(record)
    builder = _Builder()
    plan: list[dict[str, Any]] = []
    last_response: str | None = None
    for i, item in enumerate(items):
        where = f"trajectory[{i}]"
        agent = _text(item, "agent_name") or "agent"
        description = _text(item, "task_description") or _text(item, "task") or ""
        number = item.get("task_number", i + 1)
        deps = item.get("dependencies", item.get("dependency", item.get("depends_on", [])))
        plan.append({
            "task_number": number,
            "task": description,
            "agent": agent,
            "dependencies": deps if isinstance(deps, list) else ([] if deps in (None, "", "None") else [deps]),
            "expected_output": item.get("expected_output"),
        })
        builder.add(where, kind="message", agent_name="planner",
                    content=f"Task {number} for {agent}: {description}".rstrip(": "))
        logs = item.get("logs")
        if isinstance(logs, dict):
            sub = logs.get("trajectroy_log", logs.get("trajectory_log"))
            if isinstance(sub, list):
                for j, s in enumerate(sub):
                    if not isinstance(s, dict):
                        raise _FieldError(f"{where}.logs.trajectroy_log[{j}]", f"must be an object, got {type(s).__name__}")
                _react_steps(builder, sub, f"{where}.logs.trajectroy_log", agent)
        response = item.get("response")
        if response is not None and not isinstance(response, str):
            response = json.dumps(response, ensure_ascii=False)
        if response is not None:
            builder.add(where, kind="message", agent_name=agent, content=response)
            last_response = response
    final = (_answer(_text(record, "final_answer")) or _answer(_text(record, "answer"))
             or _answer(_text(record, "summary")) or _answer(last_response))
    if final is not None:
        builder.add("final_answer", kind="final", content=final, agent_name="planner")
    runtime = record.get("runtime")
    wall = float(runtime) if isinstance(runtime, (int, float)) and not isinstance(runtime, bool) else None
    return {"text": _text(record, "text") or _text(record, "question"), "steps": builder.steps, "final": final,
            "orchestration": "plan_execute", "plan": plan, "wall": wall, "model": _text(record, "model"),
            "extra": (0, 0)}


def _tool_call_fields(call: dict[str, Any], where: str) -> dict[str, Any]:
    name = call.get("name", call.get("tool"))
    function = call.get("function")
    if name is None and isinstance(function, dict):
        name = function.get("name")
    if not isinstance(name, str) or not name:
        raise _FieldError(f"{where}.name", "a tool call needs the tool's name (name, tool or function.name)")
    raw_args = next((call[k] for k in ("arguments", "input", "args", "parameters") if k in call), None)
    if raw_args is None and isinstance(function, dict):
        raw_args = function.get("arguments")
    if isinstance(raw_args, str):
        try:
            parsed = json.loads(raw_args) if raw_args.strip() else {}
        except json.JSONDecodeError:
            parsed = parse_action_input(raw_args)
        raw_args = parsed
    if raw_args is None:
        raw_args = {}
    if not isinstance(raw_args, dict):
        raw_args = {"input": raw_args}
    output = next((call[k] for k in ("output", "result", "observation", "response", "content") if k in call), None)
    error = call.get("error")
    if error is not None and not isinstance(error, dict):
        error = {"code": "tool_error", "message": str(error)}
    if isinstance(call.get("is_error"), bool) and call["is_error"] and error is None:
        error = {"code": "tool_error", "message": str(output)[:2000]}
    return {"tool": name, "arguments": raw_args,
            "observation": None if error else parse_observation(output), "error": error}


def _convert_sdk(record: dict[str, Any]) -> dict[str, Any]:
    items = _items(record)
    builder = _Builder()
    for i, turn in enumerate(items):
        where = f"trajectory[{i}]"
        tokens_in = _int(turn.get("input_tokens"), f"{where}.input_tokens")
        tokens_out = _int(turn.get("output_tokens"), f"{where}.output_tokens")
        builder.pending_in += tokens_in
        builder.pending_out += tokens_out
        calls = turn.get("tool_calls") or []
        if not isinstance(calls, list):
            raise _FieldError(f"{where}.tool_calls", f"must be a list, got {type(calls).__name__}")
        text = turn.get("text")
        if text is not None and not isinstance(text, str):
            raise _FieldError(f"{where}.text", f"must be text, got {type(text).__name__}")
        if text and text.strip():
            builder.add(where, kind="thought" if calls else "message", content=text)
        for j, call in enumerate(calls):
            if not isinstance(call, dict):
                raise _FieldError(f"{where}.tool_calls[{j}]", f"must be an object, got {type(call).__name__}")
            builder.add(f"{where}.tool_calls[{j}]", kind="tool_call", **_tool_call_fields(call, f"{where}.tool_calls[{j}]"))
    final = _answer(_text(record, "answer")) or _answer(_text(record, "final_answer"))
    if final is not None:
        builder.add("answer", kind="final", content=final)
    extra = (builder.pending_in, builder.pending_out)
    wall = record.get("duration_s", record.get("runtime"))
    return {"text": _text(record, "question") or _text(record, "text"), "steps": builder.steps, "final": final,
            "orchestration": _text(record, "orchestration") or "single", "plan": None,
            "wall": float(wall) if isinstance(wall, (int, float)) and not isinstance(wall, bool) else None,
            "model": _text(record, "model"), "extra": extra}


def _convert_atif(record: dict[str, Any]) -> dict[str, Any]:
    items = _items(record, "steps")
    builder = _Builder()
    question: str | None = None
    last_agent_message: str | None = None
    agent_info = record.get("agent")
    if not isinstance(agent_info, dict):
        agent_info = {}
    for i, step in enumerate(items):
        where = f"steps[{i}]"
        source = step.get("source")
        message = step.get("message")
        if message is not None and not isinstance(message, str):
            message = json.dumps(message, ensure_ascii=False)
        if source == "user":
            if question is None and message:
                question = message
            continue
        if source != "agent":
            continue
        metrics = step.get("metrics")
        if not isinstance(metrics, dict):
            metrics = {}
        builder.pending_in += _int(metrics.get("prompt_tokens"), f"{where}.metrics.prompt_tokens")
        builder.pending_out += _int(metrics.get("completion_tokens"), f"{where}.metrics.completion_tokens")
        calls = step.get("tool_calls") or []
        if not isinstance(calls, list):
            raise _FieldError(f"{where}.tool_calls", f"must be a list, got {type(calls).__name__}")
        reasoning = step.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning.strip():
            builder.add(where, kind="thought", content=reasoning.strip())
        if message and message.strip():
            builder.add(where, kind="thought" if calls else "message", content=message)
            if not calls:
                last_agent_message = message
        results = {}
        observation = step.get("observation")
        if isinstance(observation, dict):
            for r in observation.get("results") or []:
                if isinstance(r, dict):
                    results[r.get("source_call_id")] = r
        for j, call in enumerate(calls):
            at = f"{where}.tool_calls[{j}]"
            if not isinstance(call, dict):
                raise _FieldError(at, f"must be an object, got {type(call).__name__}")
            name = call.get("function_name", call.get("name"))
            if not isinstance(name, str) or not name:
                raise _FieldError(f"{at}.function_name", "is missing")
            args = call.get("arguments")
            if isinstance(args, str):
                args = parse_action_input(args)
            result = results.get(call.get("tool_call_id")) or (results.get(None) if len(calls) == 1 else None)
            content = result.get("content") if result else None
            error = None
            if result and result.get("is_error"):
                error = {"code": "tool_error", "message": str(content)[:2000]}
            builder.add(at, kind="tool_call", tool=name,
                        arguments=args if isinstance(args, dict) else ({} if args is None else {"input": args}),
                        observation=None if error else parse_observation(content), error=error)
    extra = record.get("extra")
    if not isinstance(extra, dict):
        extra = {}
    final = _answer(_text(extra, "final_answer")) if isinstance(extra.get("final_answer"), str) else None
    final = final or _answer(last_agent_message)
    if final is not None:
        builder.add("final_answer", kind="final", content=final)
    return {"text": question, "steps": builder.steps, "final": final, "orchestration": "single", "plan": None,
            "wall": None, "model": _text(agent_info, "model_name") or _text(record, "model"),
            "extra": (builder.pending_in, builder.pending_out)}


_CONVERTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "atif": _convert_atif,
    "react_steps": _convert_react,
    "plan_execute": _convert_plan_execute,
    "sdk_turns": _convert_sdk,
}


def _normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _agent_id_of(record: dict[str, Any], shape: str, override: str | None) -> str:
    if override:
        return override
    explicit = record.get("agent_id")
    if isinstance(explicit, str) and explicit.strip():
        return explicit.strip()
    if shape == "sdk_turns":
        parts = [str(record[k]).strip() for k in ("runner", "model") if record.get(k)]
        if parts:
            return re.sub(r"[^\w.:\-/]+", "-", ":".join(parts))
    return DEFAULT_IMPORTED_AGENT


def _scenario_id_of(record: dict[str, Any], text: str | None, file: Path, records_in_file: int,
                    scenario_ids: Mapping[str, str] | None,
                    by_text: Mapping[str, str] | None, shape: str = "") -> str:
    extra = record.get("extra")
    if not isinstance(extra, dict):
        extra = {}
    for key, value in [(k, record.get(k)) for k in ("scenario_id", "id", "uuid", "task_id")] + [
            (f"extra.{k}", extra.get(k)) for k in ("scenario_id", "task_id", "id")]:
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _FieldError(key, f"must be text or a whole number, got {type(value).__name__}")
        raw = str(value)
        return scenario_ids.get(raw, raw) if scenario_ids else raw
    if by_text and text:
        normalised = {_normalise_text(k): v for k, v in by_text.items()}
        hit = normalised.get(_normalise_text(text))
        if hit:
            return hit
    if records_in_file == 1:  # the file name; for ATIF also the nearest folders (Harbor: <job>/<task>__<trial>/agent/)
        for name in [file.stem] + ([p.name for p in file.parents][:3] if shape == "atif" else []):
            numbers = re.findall(r"\d+", name.split("__")[0])
            if len(numbers) == 1:
                raw = str(int(numbers[0]))
                return scenario_ids.get(raw, raw) if scenario_ids else raw
    raise _FieldError("id", "no scenario id: the record has no scenario_id/id, its text matches no known "
                            "scenario and the file name carries no single number; add an 'id' or pass "
                            "scenario_ids_by_text")


@dataclass
class TrajectoryImport:
    """A file-by-file import: the trajectories read, and each file refused with its error (the others load)."""

    trajectories: list[Trajectory] = field(default_factory=list)
    problems: list[TrajectoryImportError] = field(default_factory=list)
    files: list[tuple[str, int]] = field(default_factory=list)  # (file, trajectories read)

    def to_text(self) -> str:
        lines = [f"{len(self.trajectories)} trajectories from {len(self.files)} file(s); "
                 f"{len(self.problems)} file(s) refused"]
        lines.extend(f"  refused {p}" for p in self.problems)
        return "\n".join(lines)


def read_trajectories(
    path: str | Path,
    *,
    agent_id: str | None = None,
    scenario_ids: Mapping[str, str] | None = None,
    scenario_ids_by_text: Mapping[str, str] | None = None,
) -> TrajectoryImport:
    """Like ``import_trajectories``, file by file: a bad file is reported (``problems``) and the rest load."""
    root = Path(path)
    out = TrajectoryImport()
    seen: dict[str, str] = {}
    trials: dict[tuple[str, str], int] = {}
    for file in _files(root):
        try:
            got = _read_file(file, agent_id, scenario_ids, scenario_ids_by_text, trials, seen)
        except TrajectoryImportError as exc:
            out.problems.append(exc)
            continue
        out.trajectories.extend(got)
        out.files.append((str(file), len(got)))
    return out


def _read_file(file: Path, agent_id, scenario_ids, scenario_ids_by_text, trials, seen) -> list[Trajectory]:
    records = read_records(file)
    got: list[Trajectory] = []
    local_trials = dict(trials)
    local_seen: dict[str, str] = {}
    for label, record in records:
        try:
            traj = _convert(record, file, len(records), agent_id, scenario_ids, scenario_ids_by_text, local_trials)
        except _FieldError as exc:
            raise TrajectoryImportError(str(file), label, exc.field, exc.problem) from None
        where = f"{file}: {label}"
        earlier = seen.get(traj.run_id) or local_seen.get(traj.run_id)
        if earlier:
            raise TrajectoryImportError(str(file), label, "run_id",
                                        f"run {traj.run_id} (agent {traj.agent_id}, scenario {traj.scenario_id}, "
                                        f"trial {traj.trial}) was already imported from {earlier}")
        local_seen[traj.run_id] = where
        got.append(traj)
    trials.update(local_trials)
    seen.update(local_seen)
    return got


def import_trajectories(
    path: str | Path,
    *,
    agent_id: str | None = None,
    scenario_ids: Mapping[str, str] | None = None,
    scenario_ids_by_text: Mapping[str, str] | None = None,
) -> list[Trajectory]:
    """Read every trajectory in ``path`` (a file or a folder of ``.json``/``.jsonl`` files).

    ``agent_id`` names the agent of foreign records (default: see the module docstring);
    ``scenario_ids`` maps upstream scenario ids to ours (e.g. ``{"101": "PUB-101"}``);
    ``scenario_ids_by_text`` maps scenario texts to ids for records that carry only the text.
    Raises ``TrajectoryImportError`` (a ``ValueError``) naming file, record and field on bad input.
    """
    root = Path(path)
    out: list[Trajectory] = []
    seen: dict[str, str] = {}
    trials: dict[tuple[str, str], int] = {}
    for file in _files(root):
        records = read_records(file)
        for label, record in records:
            try:
                traj = _convert(record, file, len(records), agent_id, scenario_ids, scenario_ids_by_text, trials)
            except _FieldError as exc:
                raise TrajectoryImportError(str(file), label, exc.field, exc.problem) from None
            where = f"{file}: {label}"
            if traj.run_id in seen:
                raise TrajectoryImportError(str(file), label, "run_id",
                                            f"run {traj.run_id} (agent {traj.agent_id}, scenario {traj.scenario_id}, "
                                            f"trial {traj.trial}) was already imported from {seen[traj.run_id]}")
            seen[traj.run_id] = where
            out.append(traj)
    return out


def _convert(
    record: Any, file: Path, records_in_file: int, agent_override: str | None,
    scenario_ids: Mapping[str, str] | None, by_text: Mapping[str, str] | None,
    trials: dict[tuple[str, str], int],
) -> Trajectory:
    if not isinstance(record, dict):
        raise _FieldError(None, f"must be a JSON object, got {type(record).__name__}")
    shape = detect_shape(record)
    source = f"import:{file.name}"
    if shape is None:
        keys = ", ".join(sorted(record)[:12]) or "none"
        raise _FieldError("trajectory", f"matches no known trajectory shape ({', '.join(SHAPES)}); its keys: {keys}")
    if shape == "aob":
        data = dict(record)
        if agent_override and agent_override != data.get("agent_id"):
            data["agent_id"] = agent_override
            data["run_id"] = None
        data["source"] = source
        try:
            traj = Trajectory.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise _FieldError(".".join(str(p) for p in err["loc"]) or None, err["msg"]) from None
        key = (traj.agent_id, traj.scenario_id)
        trials[key] = max(trials.get(key, 0), traj.trial + 1)
        return traj
    converted = _CONVERTERS[shape](record)
    agent = _agent_id_of(record, shape, agent_override)
    scenario = _scenario_id_of(record, converted["text"], file, records_in_file, scenario_ids, by_text, shape)
    key = (agent, scenario)
    if record.get("trial") is not None:
        trial = _int(record.get("trial"), "trial")
    else:
        trial = trials.get(key, 0)
    trials[key] = max(trials.get(key, 0), trial + 1)
    status, reason = _status(record, converted["final"])
    labels: dict[str, Any] = {"source_shape": shape}
    upstream_run = record.get("run_id")
    if upstream_run is not None:
        labels["source_run_id"] = str(upstream_run)
    if shape == "sdk_turns" and record.get("runner"):
        labels["runner"] = str(record["runner"])
    steps: list[Step] = converted["steps"]
    extra_in, extra_out = converted["extra"]
    try:
        return Trajectory(
            run_id=make_run_id(agent, scenario, trial),
            agent_id=agent,
            scenario_id=scenario,
            trial=trial,
            orchestration=converted["orchestration"],
            model=converted["model"],
            status=status,
            status_reason=reason,
            final_answer=converted["final"],
            steps=steps,
            totals=Totals.from_steps(steps, converted["wall"], extra_tokens_in=extra_in, extra_tokens_out=extra_out),
            labels=labels,
            plan=converted["plan"],
            source=source,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise _FieldError(".".join(str(p) for p in err["loc"]) or None, err["msg"]) from None

