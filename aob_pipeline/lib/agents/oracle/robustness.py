"""Oracle extractors of the robustness answer kinds (``aob_pipeline.lib.scenarios.answers.robustness``):
the clarification answers, from the questions asked, the operator's replies and the tool errors observed."""

from __future__ import annotations

from typing import Any

from aob_pipeline.lib.agents.oracle.agent import ExtractionError, ObservationBook, _same, extract_answer, extractor


def _final(p: dict[str, Any], book: ObservationBook) -> dict[str, Any]:
    if not p.get("final"):
        return {}
    return {"final": extract_answer(p["final"], book)}


@extractor("clarify_missing_sensor")
def _clarify_missing_sensor(p, book):
    asset, sensor = p["asset"], p["sensor"]
    listed = book.matching("iot_list_sensors", asset=asset)
    refused = [o for o in book.errors() if (o.error or {}).get("code") == "unknown_sensor"
               and _same(o.args.get("sensor"), sensor)]
    if listed:
        names = [r["sensor"] for r in listed[-1].result["sensors"]]
        if any(_same(n, sensor) for n in names):
            raise ExtractionError(f"{asset} does list {sensor!r}; it is not missing")
        message = (f"{asset} has no sensor named '{sensor}'. Its sensors are: {', '.join(names)}.")
    elif refused:
        message = f"{asset} has no sensor named '{sensor}' ({refused[-1].error.get('message')})."
    else:
        raise ExtractionError("nothing observed shows that the sensor is missing")
    if book.questions:
        message += f" I asked: {book.questions[-1]} The operator replied: {book.replies[-1]}"
    return {"behaviour": "state_missing", "message": message, **_final(p, book)}


@extractor("clarify_vague_request")
def _clarify_vague_request(p, book):
    if not book.questions:
        raise ExtractionError("the request is vague but no clarifying question was asked")
    message = f"The request was ambiguous, so I asked: {book.questions[-1]} The operator replied: {book.replies[-1]}"
    terms = [t if isinstance(t, str) else t[0] for t in p.get("must_mention") or []]
    if terms:
        message += " (" + ", ".join(terms) + ")"
    return {"behaviour": "ask_clarification", "question": book.questions[-1], "message": message, **_final(p, book)}


@extractor("note_conflicting_logs")
def _note_conflicting_logs(p, book):
    final = _final(p, book)
    terms = [t if isinstance(t, str) else t[0] for t in p.get("must_mention") or []]
    message = ("The records quoted in the request conflict with each other, so I checked the data instead"
               + (f" ({', '.join(terms)})" if terms else "")
               + (f"; the data gives {final['final']}" if final else "") + ".")
    return {"behaviour": "note_conflict", "message": message, **final}
