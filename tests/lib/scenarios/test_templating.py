"""Time placeholders render relative to the world's now and telemetry start; malformed ones are refused."""

from datetime import datetime

import pytest

from aob_pipeline.lib.scenarios.templating import (
    RenderClock,
    TemplateError,
    placeholders_in,
    render_text,
    render_value,
)

NOW = datetime(2024, 6, 3, 11, 45)


def test_anchors_offsets_and_formats():
    assert render_text("{today}", NOW) == "2024-06-03"
    assert render_text("{now}", NOW) == "2024-06-03T11:45:00"
    assert render_text("{today-1d}", NOW) == "2024-06-02"
    assert render_text("{today-365d}", NOW) == "2023-06-04"
    assert render_text("{now-6h}", NOW) == "2024-06-03T05:45:00"
    assert render_text("{now+1d-30m}", NOW) == "2024-06-04T11:15:00"
    assert render_text("on {today-1d:long} ({today-1d:weekday})", NOW) == "on 2 June 2024 (Sunday)"
    assert render_text("{today:month} {today:year} {today:datetime}", NOW) == "June 2024 2024 2024-06-03T00:00:00"


def test_telemetry_start_rounds_up_to_a_whole_day():
    clock = RenderClock.of(NOW, "2024-05-20T06:30:00")
    assert render_text("{telemetry_start}", clock) == "2024-05-21"
    assert render_text("{telemetry_start}", RenderClock.of(NOW, "2024-05-20T00:00:00")) == "2024-05-20"
    with pytest.raises(TemplateError, match="telemetry_start"):
        render_text("{telemetry_start}", NOW)


def test_step_references_and_plain_braces_are_left_alone():
    text = "${s1.result.assets[0].asset_id} and {not a placeholder}"
    assert render_text(text, NOW) == text


@pytest.mark.parametrize("bad", ["{today-1}", "{now:fancy}", "{today -1d}", "{today+1y}"])
def test_malformed_placeholders_fail(bad):
    with pytest.raises(TemplateError):
        render_text(bad, NOW)


def test_render_value_walks_nested_structures_and_lists_placeholders():
    value = {"args": {"start": "{today-1d}", "end": "{today}"}, "list": ["{now}", 3]}
    assert render_value(value, NOW) == {"args": {"start": "2024-06-02", "end": "2024-06-03"},
                                        "list": ["2024-06-03T11:45:00", 3]}
    assert sorted(placeholders_in(value)) == ["{now}", "{today-1d}", "{today}"]
