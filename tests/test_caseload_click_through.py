"""Caseload click-through and drawing (issue #13, points 1 and 2), on the hand-made team of
tests/test_caseload.py (its table gives every answer used here).

- Every mark of every clickable chart lists exactly the requests it counts, with no error, also when
  the listed requests have no first screening, first response or due time.
- Every chart draws what its data holds: one mark per row, every colour in its scale, the open
  caseload a bar per practitioner, the time to first screening as bars from zero.
- Tooltips carry UK dates (dd/mm/yyyy), never ISO ones.

What the browser does with these specs is checked in real Chromium by tests/test_browser_caseload.py.
"""

import json
import re
from datetime import UTC, datetime

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from services import caseload, db
from services.caseload import Selection
from tests.test_caseload import PAGE, PERIOD, _chart, _click, now, page_team, team  # noqa: F401
from ui import charts

ISO_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
UK_DATE = re.compile(r"^\d{2}/\d{2}/\d{4}$")

# The column of each clickable chart's data holding what its mark counts, and whether the list
# behind the mark has exactly that many requests. People are listed by their first request, so they
# match one for one; a request can hold several referrals to one service with one outcome, so its
# list can be shorter than the referrals counted.
COUNTED = {
    "requests_by_week_and_site": ("requests", True),
    "requests_by_week_and_source": ("requests", True),
    "time_to_first_screening": ("requests", True),
    "screening_within_target_by_week": ("requests", True),
    "open_caseload_by_practitioner": ("requests", True),
    "answered_in_time_by_urgency": ("answerable", True),
    "pathway_funnel": ("requests", True),
    "vulnerabilities": ("people", True),
    "age_band_and_gender": ("people", True),
    "ethnic_category": ("people", True),
    "onward_referrals": ("referrals", False),
    "cover_by_hour_and_day": ("requests", True),
    "out_of_hours": ("requests", True),
}


def built_specs(engine, user, filters=PERIOD) -> dict[str, tuple[dict, tuple[str, ...]]]:
    """Each chart as the page sends it: its Vega-Lite spec (data inline) and its click fields."""
    with db.reading(engine) as session:
        results = caseload.all_measures(session, user, filters)
    built = {}
    for key in caseload.CHART_MEASURES:
        spec = charts.build(key, results[key], filters)
        built[key] = (charts.vega_lite(spec.chart), spec.fields)
    return built


def layers(spec: dict) -> list[dict]:
    return spec.get("layer", [spec])


def rows_of(spec: dict, layer: dict) -> list[dict]:
    data = layer.get("data") or spec.get("data")
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def clicked_layer(spec: dict) -> dict:
    """The layer whose marks are clicked: the one drawn by the selection (the chart itself when it
    has one layer; Altair moves a layered chart's selection to the top, naming its layer)."""
    return next(layer for layer in layers(spec)
                if layer.get("encoding", {}).get("opacity", {}).get("condition", {}).get("param") == charts.SELECTION)


def click_fields(spec: dict) -> list[str]:
    params = spec.get("params") or clicked_layer(spec).get("params")
    return next(param for param in params if param["name"] == charts.SELECTION)["select"]["fields"]


def test_every_clickable_chart_is_counted_here():
    assert set(COUNTED) == {key for key in caseload.CHART_MEASURES if caseload.MEASURES[key].drilldown}


def test_every_mark_is_one_row_holding_its_click_fields(engine, team):  # noqa: F811
    """Aggregating again in Vega-Lite (`sum(requests)`) made one mark of rows grouped by the drawn
    fields only, so a click on a site's bar held the site's name but not its id: no list."""
    for key, (spec, fields) in built_specs(engine, team.staff.team_lead).items():
        if key not in COUNTED:
            continue
        layer = clicked_layer(spec)
        for channel, definition in layer["encoding"].items():
            if isinstance(definition, dict):
                assert "aggregate" not in definition, (key, channel)
                assert "(" not in str(definition.get("field", "")), (key, channel)
        rows = rows_of(spec, layer)
        assert rows, key
        assert all(all(field in row and row[field] is not None for field in fields) for row in rows), key
        keys = [tuple(row[field] for field in fields) for row in rows]
        assert len(keys) == len(set(keys)), f"{key}: two marks would select the same list"


def test_every_mark_lists_exactly_the_requests_it_counts(engine, team):  # noqa: F811
    """What a click on each mark sends (the drawn row's key fields, as JSON gives them back) lists
    as many requests as the mark shows, and the list shows without an error."""
    lead = team.staff.team_lead
    for key, (spec, fields) in built_specs(engine, lead).items():
        if key not in COUNTED:
            continue
        count_column, exact = COUNTED[key]
        for row in rows_of(spec, clicked_layer(spec)):
            if not row.get(count_column):
                continue  # an empty mark draws nothing to click
            point = json.loads(json.dumps({field: row[field] for field in fields}))
            with db.writing(engine) as session:
                frame, total = caseload.drilldown_rows(session, lead, PERIOD, Selection.of(key, point))
            shown = caseload.drilldown_display(frame)
            assert len(shown) == total > 0, (key, point)
            if exact:
                assert total == row[count_column], (key, point)
            else:
                assert total <= row[count_column], (key, point)


def test_a_list_of_requests_without_screening_or_response_is_shown_with_blanks(engine, team):  # noqa: F811
    """The click-through crash: 'Routine' lists R4 (never screened) and R9 (a draft only), whose
    first screening comes back as NaT, which `clock.format_datetime` could not turn into London time."""
    with db.writing(engine) as session:
        frame, total = caseload.drilldown_rows(session, team.staff.team_lead, PERIOD,
                                               Selection.of("answered_in_time_by_urgency", {"urgency": "routine"}))
    assert total == 2 and frame["first_screened_at"].isna().all()
    shown = caseload.drilldown_display(frame)
    assert list(shown.columns) == [column.heading for column in caseload.DRILLDOWN_COLUMNS]
    assert list(shown["Reference"]) == ["R-TEST-R9", "R-TEST-R4"]
    assert list(shown["First screened"]) == ["", ""]
    assert list(shown["Received"]) == ["02/04/2025 12:00", "24/03/2025 00:00"]  # London time, BST and GMT
    assert list(shown["Due"]) == ["05/04/2025 12:00", "27/03/2025 00:00"]
    assert shown.loc[shown["Reference"] == "R-TEST-R4", "Person"].item() == "No person (general advice)"


def test_the_display_treats_every_kind_of_missing_value_as_blank():
    moment = datetime(2025, 7, 1, 11, 5, tzinfo=UTC)
    rows = [
        {"reference": "A", "received_at": moment, "due_at": None, "first_screened_at": pd.NaT, "allocated_to": None},
        {"reference": "B", "received_at": pd.Timestamp(moment), "due_at": float("nan"),
         "first_screened_at": moment.replace(tzinfo=None), "allocated_to": "Priya Practitioner"},
    ]
    frame = pd.DataFrame([{column.key: row.get(column.key) for column in caseload.DRILLDOWN_COLUMNS}
                          for row in rows])
    shown = caseload.drilldown_display(frame)
    assert list(shown["Received"]) == ["01/07/2025 12:05", "01/07/2025 12:05"]  # BST
    assert list(shown["Due"]) == ["", ""]
    assert list(shown["First screened"]) == ["", "01/07/2025 12:05"]  # a naive time is UTC
    assert list(shown["Allocated to"]) == ["", "Priya Practitioner"]


def test_the_open_caseload_draws_a_visible_bar_per_practitioner(engine, team):  # noqa: F811
    """The bars had a colour outside the scale's domain ('Not overdue' against 'Not yet due'), so
    Vega drew them with no fill: names and an axis, and nothing to see or click."""
    spec, _fields = built_specs(engine, team.staff.team_lead)["open_caseload_by_practitioner"]
    rows = rows_of(spec, spec)
    colour = spec["encoding"]["color"]
    assert {row[colour["field"]] for row in rows} <= set(colour["scale"]["domain"])
    assert len(colour["scale"]["range"]) == len(colour["scale"]["domain"])
    assert all(row["requests"] > 0 for row in rows)  # no empty segments to draw
    drawn = {(row["practitioner"], row["state"]): row["requests"] for row in rows}
    assert drawn == {("Priya Practitioner", "not_overdue"): 2, ("Not allocated", "overdue"): 1}
    assert spec["encoding"]["y"]["field"] == "practitioner"
    assert spec["encoding"]["x"]["field"] == "requests" and spec["encoding"]["x"]["stack"] == "zero"


def test_time_to_first_screening_is_drawn_as_bars_from_zero(engine, team):  # noqa: F811
    """Drawn over a range of x with y alone, each bar was a dash at its count's height."""
    spec, _fields = built_specs(engine, team.staff.team_lead)["time_to_first_screening"]
    bars = clicked_layer(spec)
    assert bars["mark"]["type"] == "bar"
    assert bars["encoding"]["x"]["bin"] == "binned" and bars["encoding"]["x2"]["field"] == "to_hours"
    assert bars["encoding"]["y"]["field"] == "requests" and "y2" not in bars["encoding"]
    assert bars["encoding"]["x"]["scale"]["domain"] == [0, 9]  # nine bins of an hour for a 4-hour target
    rows = rows_of(spec, bars)
    assert [(row["from_hours"], row["to_hours"], row["requests"]) for row in rows][:4] == [
        (0, 1, 1), (1, 2, 0), (2, 3, 0), (3, 4, 1)]


def test_every_colour_and_every_tooltip_date_is_drawable(engine, team):  # noqa: F811
    """Every value coloured is in its scale's domain; no tooltip shows an ISO date, and the weeks'
    tooltips show the Monday as dd/mm/yyyy."""
    for key, (spec, _fields) in built_specs(engine, team.staff.team_lead).items():
        for layer in layers(spec):
            encoding = layer.get("encoding", {})
            rows = rows_of(spec, layer)
            colour = encoding.get("color", {})
            domain = colour.get("scale", {}).get("domain")
            if domain is not None:
                assert {row[colour["field"]] for row in rows} <= set(domain), key
            for tooltip in encoding.get("tooltip", []):
                for row in rows:
                    value = row.get(tooltip["field"])
                    assert not (isinstance(value, str) and ISO_DATE.match(value)), (key, tooltip["field"], value)
    built = built_specs(engine, team.staff.team_lead)
    for key in ("requests_by_week_and_site", "requests_by_week_and_source", "screening_within_target_by_week"):
        spec, _fields = built[key]
        week = next(tooltip for tooltip in spec["encoding"]["tooltip"] if tooltip["title"] == "Week beginning")
        values = {row[week["field"]] for row in rows_of(spec, spec)}
        assert values and all(UK_DATE.match(value) for value in values), key
        assert values <= {"24/03/2025", "31/03/2025"}, key
    months = {row["month_label"] for row in rows_of(built["activities_by_month"][0], built["activities_by_month"][0])}
    assert months == {"March 2025", "April 2025"}


def test_heights_are_the_plotting_areas_so_no_label_is_dropped(engine, team):  # noqa: F811
    """Streamlit's default autosize 'fit' squeezed axes and legends into the given height: the open
    caseload of seven people had 17 pixels a bar and Vega dropped every other name."""
    for key, (spec, _fields) in built_specs(engine, team.staff.team_lead).items():
        assert spec["autosize"] == {"type": "fit-x", "contains": "padding"}, key
    for key in ("open_caseload_by_practitioner", "vulnerabilities", "ethnic_category", "onward_referrals",
                "out_of_hours", "answered_in_time_by_urgency", "pathway_funnel"):
        spec, _fields = built_specs(engine, team.staff.team_lead)[key]
        bars = {json.dumps(row.get("label") or row.get("practitioner") or row.get("service_label")
                           or row.get("urgency_label")) for row in rows_of(spec, clicked_layer(spec))}
        assert spec["height"] >= charts.ROW_STEP * len(bars), key


# ------------------------------------------------------------------------------------------------
# The page (AppTest): every mark of the charts that crashed shows its list


def _marks(test, measure_key) -> tuple[list[dict], tuple[str, ...]]:
    chart = _chart(test, measure_key)
    spec = json.loads(chart.proto.spec)
    layer = clicked_layer(spec)
    fields = tuple(click_fields(spec))
    dataset = (layer.get("data") or spec.get("data"))["name"]
    rows = next(data for data in chart.proto.datasets if data.name == dataset)
    return convert_arrow_bytes_to_pandas_df(rows.data.data).to_dict("records"), fields


@pytest.mark.parametrize("measure_key", ["answered_in_time_by_urgency", "pathway_funnel", "cover_by_hour_and_day",
                                         "requests_by_week_and_site", "open_caseload_by_practitioner"])
def test_on_the_page_every_mark_shows_its_list_without_an_error(app_test, page_team, measure_key):  # noqa: F811
    test = app_test(PAGE, page_team.staff.team_lead, query=PERIOD.to_query()).run()
    rows, fields = _marks(test, measure_key)
    count_column, _exact = COUNTED[measure_key]
    clicked = 0
    for row in rows:
        if not row[count_column]:
            continue
        point = {field: (row[field].item() if hasattr(row[field], "item") else row[field]) for field in fields}
        _click(test, measure_key, point)
        assert not test.exception, (point, test.exception)
        heading = next(markdown.value for markdown in test.markdown
                       if "Requests behind the selection" in markdown.value)
        assert f"Requests behind the selection: {row[count_column]}**" in heading, (point, heading)
        assert len(test.dataframe) == 1 and len(test.dataframe[0].value) == row[count_column]
        clicked += 1
    assert clicked >= 2, measure_key
