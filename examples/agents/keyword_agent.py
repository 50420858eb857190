#!/usr/bin/env python3
"""keyword_agent — a complete example of a command agent for aob (protocol aob-jsonl/1).

It uses nothing but the Python standard library and knows nothing of the aob project: everything it
learns comes over stdin, everything it does goes out over stdout, one JSON object per line
(docs/AGENT_PROTOCOL.md). Logs go to stderr.

What it does, generically (no per-scenario rules):
1. lists the sites and every site's assets;
2. finds the asset named in the request (by name or id, e.g. "Chiller 6" or "CWC04006"); says so when
   the request names one that does not exist; when none is named, asks the operator which one is meant;
3. lists that asset's sensors and finds a sensor named in the request;
4. with a sensor: fetches its history over the window the request gives (two dates, or one date and
   "day"/"week"/"month", or yesterday/today/last N days; otherwise the last day before the world's
   current time) and answers with
   count, mean, min, max and last value; without one: answers with the asset's sensors or its record.

Run it under aob:   aob agents add keyword --command "python3 examples/agents/keyword_agent.py"
Try it by hand:     echo '{"type":"task","task":{"text":"List the sites"},"tools":[]}' | python3 keyword_agent.py
"""

import json
import re
import sys
from datetime import datetime, timedelta

TIMESTAMP = "%Y-%m-%dT%H:%M:%S"


class ProtocolError(Exception):
    pass


class Runner:
    """The agent's side of the JSON-lines conversation with the aob runner."""

    def __init__(self, stdin, stdout):
        self.stdin = stdin
        self.stdout = stdout
        self.next_id = 0

    def send(self, message):
        self.stdout.write(json.dumps(message) + "\n")
        self.stdout.flush()

    def receive(self, expected_type, request_id):
        line = self.stdin.readline()
        if not line:
            raise ProtocolError("the runner closed stdin while a reply was awaited")
        message = json.loads(line)
        if message.get("type") != expected_type or message.get("id") != request_id:
            raise ProtocolError("unexpected reply %r (awaited %s %s)" % (line[:200], expected_type, request_id))
        return message

    def _new_id(self):
        self.next_id += 1
        return "c%d" % self.next_id

    def call(self, tool, arguments=None):
        """Call a tool; returns the envelope {"ok": true, "result": ...} or {"ok": false, "error": ...}."""
        request_id = self._new_id()
        self.send({"type": "tool_call", "id": request_id, "tool": tool, "arguments": arguments or {}})
        return self.receive("tool_result", request_id)["result"]

    def ask_operator(self, question):
        request_id = self._new_id()
        self.send({"type": "ask_operator", "id": request_id, "question": question})
        return self.receive("operator_reply", request_id)["text"]

    def think(self, text):
        self.send({"type": "thought", "text": text})

    def final(self, answer):
        self.send({"type": "final", "answer": answer})


def log(text):
    sys.stderr.write("keyword_agent: %s\n" % text)


# ------------------------------------------------------------------------------------------ matching


def name_pattern(name):
    """A regex matching ``name`` as whole words, any case, flexible spaces/dashes ('Chiller 6' ~ 'chiller-6')."""
    parts = [re.escape(p) for p in re.split(r"[\s_\-]+", name.strip()) if p]
    return re.compile(r"(?<![A-Za-z0-9])" + r"[\s_\-]*".join(parts) + r"(?![A-Za-z0-9])", re.IGNORECASE)


def find_named(text, records, keys):
    """The record whose name (under any of ``keys``) appears in ``text``; the longest name wins."""
    best, best_len = None, 0
    for record in records:
        for key in keys:
            value = record.get(key)
            if value and name_pattern(str(value)).search(text) and len(str(value)) > best_len:
                best, best_len = record, len(str(value))
    return best


def parse_time(text):
    for fmt in (TIMESTAMP, "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    return None


def find_window(text, now):
    """[start, end) from the request: two timestamps, or one and a span word, relative words (yesterday,
    today, last N days/hours), else the day before ``now``."""
    found = re.findall(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?", text)
    moments = [m for m in (parse_time(f) for f in found) if m is not None]
    if len(moments) >= 2:
        start, end = sorted(moments[:2])
        if end == start:
            end = start + timedelta(days=1)
        return start, end
    lowered = text.lower()
    if now is None and not moments:
        return None
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) if now else None
    if not moments:
        if "yesterday" in lowered:
            return midnight - timedelta(days=1), midnight
        if "today" in lowered and now > midnight:
            return midnight, now
        last = re.search(r"\b(?:last|past)\s+(\d+)\s+(day|hour|week)s?\b", lowered)
        if last:
            unit = {"day": timedelta(days=1), "hour": timedelta(hours=1), "week": timedelta(days=7)}[last.group(2)]
            return now - int(last.group(1)) * unit, now
    span = timedelta(days=1)
    if "week" in lowered:
        span = timedelta(days=7)
    elif "month" in lowered:
        span = timedelta(days=30)
    elif "hour" in lowered and "hourly" not in lowered:
        span = timedelta(hours=1)
    if moments:
        return moments[0], moments[0] + span
    return now - span, now


# ------------------------------------------------------------------------------------------- the agent


def all_assets(runner):
    sites = runner.call("iot_list_sites")
    if not sites["ok"]:
        return [], [], "listing the sites failed: %s" % sites["error"]["message"]
    site_list = sites["result"]["sites"]
    assets = []
    for site in site_list:
        reply = runner.call("iot_list_assets", {"site_id": site["site_id"]})
        if reply["ok"]:
            assets.extend(reply["result"]["assets"])
        else:
            runner.think("Listing the assets of %s failed: %s" % (site["site_id"], reply["error"]["message"]))
    return site_list, assets, None


def describe_history(asset, result):
    s = result["summary"]
    unit = result.get("unit") or ""
    return ("%s of %s (%s) from %s to %s: %d readings, mean %s %s, min %s, max %s, last value %s at %s."
            % (result["sensor"], asset["name"], asset["asset_id"], result["start"], result["end"], s["count"],
               s["mean"], unit, s["min"], s["max"], s["last_value"], s["last_ts"])).replace("  ", " ")


def solve(runner, task):
    text = task.get("text", "")
    runner.think("Finding the asset named in the request among every site's assets.")
    sites, assets, problem = all_assets(runner)
    if problem:
        return "I could not look up the assets: " + problem
    asset = find_named(text, assets, ("name", "asset_id"))
    lowered = text.lower()
    named = re.search(r"\b(chiller|ahu|air[\s-]handling unit)\s*-?\s*(\d+)\b", text, re.IGNORECASE)
    if asset is None and named:
        return "There is no asset named %s. Known assets: %s." % (named.group(0), ", ".join(
            "%s (%s)" % (a["name"], a["asset_id"]) for a in assets))
    if asset is None:
        if re.search(r"\bsites?\b", lowered) and not re.search(r"\bassets?\b|\bsensors?\b", lowered):
            return "Sites: " + ", ".join("%s (%s)" % (s["site_id"], s["name"]) for s in sites) + "."
        site = find_named(text, sites, ("site_id", "name"))
        if re.search(r"\bassets?\b|\bchillers?\b|\bahus?\b|\bequipment\b", lowered):
            chosen = [a for a in assets if site is None or a["site_id"] == site["site_id"]]
            where = " at %s" % site["site_id"] if site else ""
            return "Assets%s (%d): %s." % (where, len(chosen), ", ".join(
                "%s (%s, %s)" % (a["name"], a["asset_id"], a["equipment_class"]) for a in chosen))
        runner.think("No asset is named in the request; asking the operator.")
        reply = runner.ask_operator("Which asset (name or id) do you mean?")
        asset = find_named(reply, assets, ("name", "asset_id"))
        if asset is None:
            return "I could not tell which asset the request is about, and the operator did not name one."
        text = text + " " + reply
    runner.think("The request is about %s (%s); reading its sensors." % (asset["name"], asset["asset_id"]))
    reply = runner.call("iot_list_sensors", {"asset": asset["asset_id"]})
    if not reply["ok"]:
        return "I could not list the sensors of %s: %s" % (asset["name"], reply["error"]["message"])
    sensors = reply["result"]["sensors"]
    # Sensor names may repeat the asset's name ("Chiller 6 Supply Temperature"): match on the rest too.
    sensor = find_named(text, sensors, ("sensor",))
    if sensor is None:
        if re.search(r"\bsensors?\b|\bmeters?\b|\bpoints?\b", lowered):
            return "%s (%s) has %d sensors: %s." % (asset["name"], asset["asset_id"], len(sensors),
                                                   ", ".join(s["sensor"] for s in sensors))
        record = runner.call("iot_get_asset", {"asset": asset["asset_id"]})
        if not record["ok"]:
            return "%s is asset %s at site %s." % (asset["name"], asset["asset_id"], asset["site_id"])
        r = record["result"]
        article = "an" if r["equipment_class"][:1].upper() in "AEIOU" else "a"
        return "%s (%s) is %s %s at site %s with %s sensors." % (
            r["name"], r["asset_id"], article, r["equipment_class"], r["site_id"], r.get("sensor_count", len(sensors)))
    now_reply = runner.call("iot_current_time")
    now = parse_time(now_reply["result"]["now"][:19]) if now_reply["ok"] else None
    window = find_window(text, now)
    if window is None:
        return "I could not read the current time (%s) and the request gives no dates." % now_reply["error"]["message"]
    start, end = window
    runner.think("Fetching %s of %s from %s to %s." % (sensor["sensor"], asset["name"],
                                                       start.strftime(TIMESTAMP), end.strftime(TIMESTAMP)))
    history = runner.call("iot_sensor_history", {
        "asset": asset["asset_id"], "sensor": sensor["sensor"],
        "start": start.strftime(TIMESTAMP), "end": end.strftime(TIMESTAMP), "page_size": 1,
    })
    if not history["ok"]:
        error = history["error"]
        return "No data for %s of %s in that window: %s%s" % (
            sensor["sensor"], asset["name"], error["message"], (" (%s)" % error["hint"]) if error.get("hint") else "")
    return describe_history(asset, history["result"])


def main():
    runner = Runner(sys.stdin, sys.stdout)
    first = sys.stdin.readline()
    if not first:
        log("no task received")
        return 2
    message = json.loads(first)
    if message.get("type") != "task":
        log("the first message is not a task: %r" % first[:200])
        return 2
    task = message.get("task", {})
    log("task %s: %s" % (task.get("scenario_id"), task.get("text", "")[:80]))
    runner.final(solve(runner, task))
    return 0


if __name__ == "__main__":
    sys.exit(main())
