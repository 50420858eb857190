"""How the heuristic baselines read the periods and kinds of question of the public AssetOpsBench requests."""

from __future__ import annotations

from datetime import datetime

import pytest

from aob_pipeline.lib.agents.heuristic.language import find_window
from aob_pipeline.lib.agents.heuristic.skills import bundle_rule, find_window_days
from aob_pipeline.lib.agents.heuristic.understanding import Request, classify

NOW = datetime(2020, 6, 30, 23, 45)


@pytest.mark.parametrize("text, start, end", [
    ("Get the work order of equipment CWC04013 for year 2017.", "2017-01-01", "2018-01-01"),
    ("Get the daily count of the events of alert, anomaly for 2021 for equipment CWC04009.", "2021-01-01", "2022-01-01"),
    ("Get all the events of equipment CWC04009 for the June of 2020 and provide a summary", "2020-06-01", "2020-07-01"),
    ("daily count of alert, anomaly and work order event for the May 2020 for CWC04009", "2020-05-01", "2020-06-01"),
    ("events of equipment CWC04009 for the first week of June of 2020", "2020-06-01", "2020-06-08"),
    ("bundling for CWC04009 covering years of 2017, 2018 and 2019, within two weeks", "2017-01-01", "2020-01-01"),
    ("Download sensor data for Chiller 6's Tonnage from the last week of 2020", "2020-12-25", "2021-01-01"),
    ("all sensor data for Chiller 6 from the last week of April '20 at the MAIN site", "2020-04-24", "2020-05-01"),
    ("Is there any anomaly in Chiller 6's Tonnage in the week of 2020-04-27 at MAIN?", "2020-04-27", "2020-05-04"),
    ("In May and June of 2020, numerous anomalies and alerts have been reported", "2020-05-01", "2020-07-01"),
    ("on 30 June 2020", "2020-06-30", "2020-07-01"),  # a date, not the month
    ("Assume today is early of July 2020, I would like to review the performance of chiller 9 for June 2020",
     "2020-06-01", "2020-07-01"),  # 'today is ...' sets the clock, not the period
])
def test_calendar_periods(text, start, end):
    window = find_window(text, NOW)
    assert (window.start, window.end) == (datetime.fromisoformat(start), datetime.fromisoformat(end)), window


def _req(text: str) -> Request:
    return Request(text=text, question=text)


def test_two_weeks_is_fourteen_days_and_the_bundle_rule_follows_the_wording():
    upstream = ("Which corrective work orders for equipment CWC04009 in year 2017 can be bundled in the next "
                "maintenance window? A bundle means that several work orders are executed in a short period, say in "
                "two weeks.")
    assert find_window_days(_req(upstream)) == 14 and bundle_rule(_req(upstream)) == "gap"
    ours = "Bundle Chiller 6's corrective work orders so that each bundle spans at most 7 days."
    assert find_window_days(_req(ours)) == 7 and bundle_rule(_req(ours)) == "span"


def test_daily_counts_and_group_summaries_are_their_own_kinds():
    part = classify("Get the daily count of the events of alert, anomaly for 2021 for equipment CWC04009", _req(""))
    assert part.kind == "event_days" and part.options["groups"] == ["ALERT", "ANOMALY"]
    part = classify("provide a summary based on the event group, such as work order event, alerts and anomaly "
                    "events", _req(""))
    assert part.kind == "events" and not part.options["prose"]


def test_a_review_of_alerts_and_anomalies_is_a_breakdown():
    part = classify("I would like to review the performance of chiller 9 with equipment ID CWC04009 for June 2020 "
                    "and track any anomalies or operation violations as alerts", _req(""))
    assert part.kind == "alert_anomaly_breakdown"
