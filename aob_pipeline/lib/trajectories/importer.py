"""Import trajectories recorded elsewhere: the three public AssetOpsBench shapes and our own schema.

Shapes, detected per record (a file may be one JSON object, a JSON array, an object with a
``trajectories`` array, or JSON lines; a folder means every ``*.json`` / ``*.jsonl`` file in it):

- ``aob`` — our own ``Trajectory`` (``run_id``, ``agent_id``, ``scenario_id``, ``status``, ``steps`` ...).
- ``react_steps`` — (a) ReAct steps: ``{task, trajectory: [{step, thought, action, action_input,
  observation, state}], final_answer}``. A ``Finish`` action is the final answer; other actions are tool
  calls whose ``action_input`` is parsed (JSON object, ``key=value, ...`` or kept as ``{"input": text}``);
  a ``state`` saying the action was invalid becomes the step's error.
- ``plan_execute`` — (b) plan-execute: ``{id, text, runtime, trajectory: [{task_number, task_description,
  agent_name, response, logs?}]}``. The tasks become the ``plan``; each task is a planner message, the
  sub-agent's own ReAct steps (``logs.trajectroy_log`` as upstream spells it, or ``trajectory_log``) and
  the sub-agent's response message; the final answer is ``final_answer``/``answer`` or the last response.
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
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aob_pipeline.lib.errors import AobError
from aob_pipeline.lib.trajectories.schema import Step, Totals, Trajectory, make_run_id

SHAPES = ("aob", "react_steps", "plan_execute", "sdk_turns")
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
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".json", ".jsonl"))
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
        if action is not None and not isinstance(action, str):
            raise _FieldError(f"{where}.action", f"must be text (a tool name), got {type(action).__name__}")
        action = (action or "").strip()
        if not action:
            continue
        if action.lower() in FINISH_ACTIONS:
            raw = item.get("action_input")
            finish = raw if isinstance(raw, str) else (None if raw is None else json.dumps(raw))
            continue
        state = item.get("state")
        error = None
        if isinstance(state, str) and re.search(r"invalid|error|fail|loop", state, re.I):
            error = {"code": "agent_state", "message": state}
        observation = parse_observation(item.get("observation"))
        if error is None and isinstance(observation, dict) and isinstance(observation.get("error"), (str, dict)):
            err = observation["error"]
            error = err if isinstance(err, dict) else {"code": "tool_error", "message": err}
        builder.add(where, kind="tool_call", tool=action, arguments=parse_action_input(item.get("action_input")),
                    observation=None if error else observation, error=error, agent_name=agent_name)
    return finish


def _answer(text: str | None) -> str | None:
    """A final answer, or None when it is missing or blank."""
    return text if text is not None and text.strip() else None


def _status(record: dict[str, Any], final: str | None) -> tuple[str, str | None]:
    status = record.get("status")
    if isinstance(status, str) and status in ("completed", "failed", "timed_out", "crashed"):
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


_CONVERTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
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
                    by_text: Mapping[str, str] | None) -> str:
    for key in ("scenario_id", "id", "uuid", "task_id"):
        value = record.get(key)
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
    numbers = re.findall(r"\d+", file.stem)
    if records_in_file == 1 and len(numbers) == 1:
        raw = str(int(numbers[0]))
        return scenario_ids.get(raw, raw) if scenario_ids else raw
    raise _FieldError("id", "no scenario id: the record has no scenario_id/id, its text matches no known "
                            "scenario and the file name carries no single number; add an 'id' or pass "
                            "scenario_ids_by_text")


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
    scenario = _scenario_id_of(record, converted["text"], file, records_in_file, scenario_ids, by_text)
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

