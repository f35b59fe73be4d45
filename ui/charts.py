"""Altair charts of the caseload measures, each clickable through to the requests behind a mark.

Every builder takes the small DataFrame a `services.caseload` measure returned and gives back a
`ChartSpec`: the chart and the fields a click selects (the drill-down keys of that measure). The
data drawn are counts, labels and staff names only; never a client's name or identifier.

Rules every chart keeps, because a click and the drawing depend on them:
- **One mark per row.** The measures are already counted, so no chart aggregates again (no
  `sum(...)`): an aggregated mark keeps only the fields it is grouped by, and a click on it would
  lose the key fields its list needs (the site's id behind a site's name, a code behind a label).
- **Every colour in the scale's domain.** A value outside an explicit domain is drawn with no
  fill: an invisible bar nobody can click. Labels and domains come from one mapping.
- **Bars from zero.** A distribution drawn over ranges of x uses `bin="binned"` with its start
  and end, so Vega-Lite draws bars up from zero rather than dashes at each height.
- **UK dates** (dd/mm/yyyy) in tooltips, carried as text in the data; ISO dates stay only as keys.
- **Heights are the plotting area's** (`vega_lite` asks for autosize fit-x): Streamlit's default
  "fit" squeezes axes and legends into the given height, and a bar chart of many rows then loses
  every other label.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import altair as alt
import pandas as pd
from altair.utils.schemapi import debug_mode

from services import clock, national_return
from services.caseload import DAYS, RAG_LABELS, CaseloadFilters, week_starts

SELECTION = "pick"
RAG_COLOURS = {"green": "#2e7d32", "amber": "#f9a825", "red": "#c62828"}
WITHIN_COLOURS = ["#2e7d32", "#c62828"]
HEIGHT = 260
ROW_STEP = 26  # pixels per bar of a horizontal bar chart: room for its label at the theme's font
LABEL_LIMIT = 170  # pixels of a category's label before it is cut short with an ellipsis
BELOW = alt.Legend(orient="bottom", direction="horizontal")  # a horizontal bar chart's legend: bars keep the width
OPEN_STATES = {"overdue": "Overdue", "not_overdue": "Not overdue"}
OPEN_STATE_COLOURS = {"overdue": "#c62828", "not_overdue": "#90a4ae"}
TILE_LABELS = {
    "received": "Requests received",
    "share_screened": "Share screened",
    "median_minutes": "Median to screening",
    "p90_minutes": "90th centile to screening",
    "share_within_target": "Screened in target",
    "share_answered_in_time": "Answered in time",
    "open_now": "Open now",
    "waiting_now": "Waiting allocation",
    "overdue_now": "Overdue now",
}


@dataclass(frozen=True)
class ChartSpec:
    chart: alt.TopLevelMixin | None  # None: nothing to draw in this period
    fields: tuple[str, ...]  # what a click selects; empty when the chart has no list behind it


def _pick(*fields: str) -> alt.Parameter:
    # One mark at a time: the list under the chart shows exactly that mark's requests.
    return alt.selection_point(name=SELECTION, fields=list(fields), on="click", toggle=False, clear="dblclick")


def _opacity(selection: alt.Parameter) -> alt.OpacityValue:
    # Built as the channel object itself: alt.condition's dict would be re-parsed against the
    # whole schema, which costs more than the rest of the chart.
    return alt.OpacityValue(value=0.45, condition={"param": selection.name, "value": 1.0})


def _weeks_axis(filters: CaseloadFilters) -> alt.X:
    weeks = [week.isoformat() for week in week_starts(filters)]
    return alt.X(
        "week:O",
        title="Week beginning (Monday)",
        scale=alt.Scale(domain=weeks),
        axis=alt.Axis(labelExpr="slice(datum.value, 8, 10) + '/' + slice(datum.value, 5, 7)", labelAngle=0),
    )


def _count_axis(title: str, **options) -> dict:
    """A channel's title and axis for a count: whole-number ticks only."""
    return {"title": title, "axis": alt.Axis(format="d", tickMinStep=1, **options)}


def _rows_height(rows: int) -> int:
    return max(3, rows) * ROW_STEP


def _with_week_label(frame: pd.DataFrame) -> pd.DataFrame:
    """The week's Monday as the screen shows dates (dd/mm/yyyy), for tooltips; `week` stays ISO."""
    return frame.assign(week_label=frame["week"].map(clock.format_date))


def _inline(frame: pd.DataFrame) -> alt.InlineData:
    """The frame's rows inline in the spec, as plain JSON values (dates as ISO text, no NaN).

    Given as data values rather than a DataFrame, so Altair skips its DataFrame sanitising and
    the page can cache the finished spec.
    """
    return alt.InlineData(values=[{key: _json_value(value) for key, value in row.items()}
                                  for row in frame.to_dict("records")])


def _json_value(value):
    if isinstance(value, date):
        return value.isoformat()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _requests_per_week_by(selected: str, shown: str, title: str):
    """Requests per London week stacked by one field: `selected` drives the click, `shown` the colour."""

    def chart_of(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
        if frame.empty:
            return ChartSpec(None, ("week", selected))
        pick = _pick("week", selected)
        chart = (
            alt.Chart(_inline(_with_week_label(frame)))
            .mark_bar()
            .encode(
                x=_weeks_axis(filters),
                y=alt.Y("requests:Q", stack="zero", **_count_axis("Requests")),
                color=alt.Color(f"{shown}:N", title=title),
                opacity=_opacity(pick),
                tooltip=[alt.Tooltip("week_label:N", title="Week beginning"), alt.Tooltip(f"{shown}:N", title=title),
                         alt.Tooltip("requests:Q", title="Requests")],
            )
            .add_params(pick)
            .properties(height=HEIGHT)
        )
        return ChartSpec(chart, ("week", selected))

    return chart_of


requests_by_week_and_site = _requests_per_week_by("site_id", "site", "Site")
requests_by_week_and_source = _requests_per_week_by("source", "source_label", "Source")


def time_to_first_screening(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame["requests"].sum() == 0:
        return ChartSpec(None, ("bin",))
    pick = _pick("bin")
    target_hours = float(frame["target_minutes"].iloc[0]) / 60
    data = frame.assign(
        to_hours=frame["from_hours"] + target_hours / 4,
        target=frame["within_target"].map({True: "Within target", False: "Over target"}),
    )
    last_edge = float(data["to_hours"].max())
    bars = (
        alt.Chart(_inline(data))
        .mark_bar()
        .encode(
            # "binned": from_hours and to_hours are each bar's edges, so the bars stand on zero.
            x=alt.X("from_hours:Q", bin="binned", scale=alt.Scale(domain=[0, last_edge]),
                    title="Hours from request to first screening (last bar: more than this)"),
            x2=alt.X2("to_hours"),
            y=alt.Y("requests:Q", **_count_axis("Screened requests")),
            color=alt.Color("target:N", title="", scale=alt.Scale(domain=["Within target", "Over target"],
                                                                 range=WITHIN_COLOURS)),
            opacity=_opacity(pick),
            tooltip=[alt.Tooltip("label:N", title="Time to screening"),
                     alt.Tooltip("requests:Q", title="Screened requests")],
        )
        .add_params(pick)
    )
    target = (
        alt.Chart(alt.InlineData(values=[{"target_hours": target_hours, "label": f"Target {target_hours:g} h"}]))
        .mark_rule(strokeDash=[4, 3], color="black")
        .encode(x=alt.X("target_hours:Q"), tooltip=[alt.Tooltip("label:N", title="Target")])
    )
    return ChartSpec(alt.layer(bars, target).properties(height=HEIGHT), ("bin",))


def screening_within_target_by_week(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame.empty:
        return ChartSpec(None, ("week", "rag"))
    pick = _pick("week", "rag")
    chart = (
        alt.Chart(_inline(_with_week_label(frame)))
        .mark_bar()
        .encode(
            x=_weeks_axis(filters),
            y=alt.Y("requests:Q", stack="normalize", title="Share of screened requests",
                    axis=alt.Axis(format="%")),
            color=alt.Color("rag:N", title="", sort=list(RAG_COLOURS),
                            scale=alt.Scale(domain=list(RAG_COLOURS), range=list(RAG_COLOURS.values())),
                            legend=alt.Legend(labelExpr=_label_expr(RAG_LABELS))),
            order=alt.Order("rag_order:Q"),
            opacity=_opacity(pick),
            tooltip=[alt.Tooltip("week_label:N", title="Week beginning"),
                     alt.Tooltip("rag_label:N", title="Time to screening"),
                     alt.Tooltip("requests:Q", title="Screened requests"),
                     alt.Tooltip("share_within_target:Q", title="Within target that week", format=".0%")],
        )
        .transform_calculate(rag_order="indexof(['green', 'amber', 'red'], datum.rag)")
        .add_params(pick)
        .properties(height=HEIGHT)
    )
    return ChartSpec(chart, ("week", "rag"))


def _label_expr(labels: dict[str, str]) -> str:
    cases = " : ".join(f"datum.label == '{code}' ? '{text}'" for code, text in labels.items())
    return f"{cases} : datum.label"


def answered_in_time_by_urgency(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame["answerable"].sum() == 0:
        return ChartSpec(None, ("urgency",))
    pick = _pick("urgency")
    chart = (
        alt.Chart(_inline(frame))
        .mark_bar()
        .encode(
            x=alt.X("share:Q", title="Answered by due time", axis=alt.Axis(format="%"),
                    scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("urgency_label:N", title="Urgency", sort=list(frame["urgency_label"]),
                    axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            opacity=_opacity(pick),
            tooltip=[alt.Tooltip("urgency_label:N", title="Urgency"),
                     alt.Tooltip("share:Q", title="Share answered in time", format=".0%"),
                     alt.Tooltip("answered_in_time:Q", title="Answered in time"),
                     alt.Tooltip("answerable:Q", title="Answered or due")],
        )
        .add_params(pick)
        .properties(height=_rows_height(len(frame)))
    )
    return ChartSpec(chart, ("urgency",))


def open_caseload_by_practitioner(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame.empty:
        return ChartSpec(None, ("practitioner_id", "state"))
    pick = _pick("practitioner_id", "state")
    data = frame.melt(id_vars=["practitioner_id", "practitioner"], value_vars=list(OPEN_STATES),
                      var_name="state", value_name="requests")
    data = data[data["requests"] > 0]  # a segment of no requests has nothing to draw or click
    data["state_label"] = data["state"].map(OPEN_STATES)
    chart = (
        alt.Chart(_inline(data))
        .mark_bar()
        .encode(
            y=alt.Y("practitioner:N", title="", sort=list(frame["practitioner"]),
                    axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            x=alt.X("requests:Q", stack="zero", **_count_axis("Open requests")),
            color=alt.Color("state_label:N", title="", sort=list(OPEN_STATES.values()),
                            scale=alt.Scale(domain=list(OPEN_STATES.values()),
                                            range=[OPEN_STATE_COLOURS[state] for state in OPEN_STATES]),
                            legend=BELOW),
            order=alt.Order("state_order:Q"),
            opacity=_opacity(pick),
            tooltip=[alt.Tooltip("practitioner:N", title="Allocated to"), alt.Tooltip("state_label:N", title="State"),
                     alt.Tooltip("requests:Q", title="Open requests")],
        )
        .transform_calculate(state_order=f"indexof({list(OPEN_STATES)}, datum.state)")
        .add_params(pick)
        .properties(height=_rows_height(len(frame)))
    )
    return ChartSpec(chart, ("practitioner_id", "state"))


def _horizontal_share(frame: pd.DataFrame, key: str, label: str, value: str, title: str, fmt: str,
                      category: str) -> alt.Chart:
    pick = _pick(key)
    return (
        alt.Chart(_inline(frame))
        .mark_bar()
        .encode(
            y=alt.Y(f"{label}:N", title="", sort="-x", axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            x=alt.X(f"{value}:Q", title=title,
                    axis=alt.Axis(format=fmt, tickMinStep=1 if fmt == "d" else alt.Undefined)),
            opacity=_opacity(pick),
            tooltip=[alt.Tooltip(f"{label}:N", title=category), alt.Tooltip(f"{value}:Q", title=title, format=fmt)],
        )
        .add_params(pick)
        .properties(height=_rows_height(len(frame)))
    )


def vulnerabilities(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame.empty:
        return ChartSpec(None, ("code",))
    chart = _horizontal_share(frame, "code", "label", "share", "Share of screened people", ".0%", "Vulnerability")
    tooltip = [alt.Tooltip("label:N", title="Vulnerability"),
               alt.Tooltip("share:Q", title="Share of screened people", format=".0%"),
               alt.Tooltip("people:Q", title="People")]
    return ChartSpec(chart.encode(tooltip=tooltip), ("code",))


def age_band_and_gender(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame.empty:
        return ChartSpec(None, ("age_band", "gender"))
    pick = _pick("age_band", "gender")
    order = ["10–17", "18–25", "26–64", "65+", "Not known", "Under 10 (check the record)"]
    chart = (
        alt.Chart(_inline(frame))
        .mark_bar()
        .encode(
            x=alt.X("age_band_label:N", title="Age band", sort=order, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("people:Q", stack="zero", **_count_axis("People")),
            color=alt.Color("gender_label:N", title="Gender identity"),
            opacity=_opacity(pick),
            tooltip=[alt.Tooltip("age_band_label:N", title="Age band"),
                     alt.Tooltip("gender_label:N", title="Gender identity"), alt.Tooltip("people:Q", title="People")],
        )
        .add_params(pick)
        .properties(height=HEIGHT)
    )
    return ChartSpec(chart, ("age_band", "gender"))


def ethnic_category(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame.empty:
        return ChartSpec(None, ("ethnic_category",))
    return ChartSpec(_horizontal_share(frame, "ethnic_category", "label", "people", "People", "d", "Ethnic category"),
                     ("ethnic_category",))


def pathway_funnel(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame["requests"].iloc[0] == 0:
        return ChartSpec(None, ("stage",))
    pick = _pick("stage")
    base = alt.Chart(_inline(frame)).encode(
        y=alt.Y("label:N", title="", sort=list(frame["label"]), axis=alt.Axis(labelLimit=LABEL_LIMIT)),
        x=alt.X("requests:Q", **_count_axis("Requests")),
    )
    bars = base.mark_bar().encode(
        opacity=_opacity(pick),
        tooltip=[alt.Tooltip("label:N", title="Stage"), alt.Tooltip("requests:Q", title="Requests"),
                 alt.Tooltip("share_of_received:Q", title="Share of requests", format=".0%")],
    ).add_params(pick)
    text = base.mark_text(align="left", dx=4).encode(text=alt.Text("share_of_received:Q", format=".0%"))
    return ChartSpec(alt.layer(bars, text).properties(height=_rows_height(len(frame))), ("stage",))


def onward_referrals(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame.empty:
        return ChartSpec(None, ("service", "outcome"))
    pick = _pick("service", "outcome")
    chart = (
        alt.Chart(_inline(frame))
        .mark_bar()
        .encode(
            y=alt.Y("service_label:N", title="", sort="-x", axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            x=alt.X("referrals:Q", stack="zero", **_count_axis("Onward referrals")),
            color=alt.Color("outcome_label:N", title="Outcome", legend=alt.Legend(orient="bottom", columns=2)),
            opacity=_opacity(pick),
            tooltip=[alt.Tooltip("service_label:N", title="Service"),
                     alt.Tooltip("outcome_label:N", title="Outcome"),
                     alt.Tooltip("referrals:Q", title="Onward referrals")],
        )
        .add_params(pick)
        .properties(height=_rows_height(frame["service"].nunique()))
    )
    return ChartSpec(chart, ("service", "outcome"))


def cover_by_hour_and_day(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame.empty:
        return ChartSpec(None, ("weekday", "hour"))
    pick = _pick("weekday", "hour")
    chart = (
        alt.Chart(_inline(frame.assign(hour_label=frame["hour"].map(lambda hour: f"{hour:02d}:00–{hour:02d}:59"))))
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title="Hour of the day (London)", scale=alt.Scale(domain=list(range(24))),
                    axis=alt.Axis(labelAngle=0)),
            y=alt.Y("day:N", title="", sort=list(DAYS), scale=alt.Scale(domain=list(DAYS))),
            color=alt.Color("requests:Q", title="Requests", scale=alt.Scale(scheme="blues")),
            opacity=_opacity(pick),
            tooltip=[alt.Tooltip("day:N", title="Day"), alt.Tooltip("hour_label:N", title="Hour (London)"),
                     alt.Tooltip("requests:Q", title="Requests")],
        )
        .add_params(pick)
        .properties(height=220)
    )
    return ChartSpec(chart, ("weekday", "hour"))


def out_of_hours(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame["requests"].sum() == 0:
        return ChartSpec(None, ("category",))
    pick = _pick("category")
    chart = (
        alt.Chart(_inline(frame))
        .mark_bar()
        .encode(
            y=alt.Y("label:N", title="", sort=list(frame["label"]), axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            x=alt.X("share:Q", title="Share of requests", axis=alt.Axis(format="%")),
            color=alt.Color("out_of_hours:N", title="Out of hours",
                            scale=alt.Scale(domain=[True, False], range=["#5e35b1", "#b0bec5"]),
                            legend=alt.Legend(labelExpr="datum.label == 'true' ? 'Yes' : 'No'", orient="bottom",
                                              direction="horizontal")),
            opacity=_opacity(pick),
            tooltip=[alt.Tooltip("label:N", title="Received"), alt.Tooltip("requests:Q", title="Requests"),
                     alt.Tooltip("share:Q", title="Share", format=".0%")],
        )
        .add_params(pick)
        .properties(height=_rows_height(len(frame)))
    )
    return ChartSpec(chart, ("category",))


def activities_by_month(frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    if frame.empty:
        return ChartSpec(None, ())
    data = frame.assign(month_label=frame["month"].map(_month_label))
    chart = (
        alt.Chart(_inline(data))
        .mark_bar()
        .encode(
            # "2026-09" shown as "09/2026", the order of the screen's dates.
            x=alt.X("month:O", title="Month", axis=alt.Axis(
                labelAngle=0, labelExpr="slice(datum.value, 5, 7) + '/' + slice(datum.value, 0, 4)")),
            xOffset=alt.XOffset("kind_label:N"),
            y=alt.Y("sessions:Q", **_count_axis("Meetings or sessions")),
            color=alt.Color("kind_label:N", title=""),
            tooltip=[alt.Tooltip("month_label:N", title="Month"), alt.Tooltip("kind_label:N", title="Activity"),
                     alt.Tooltip("sessions:Q", title="Meetings or sessions"),
                     alt.Tooltip("people_trained:Q", title="People trained")],
        )
        .properties(height=HEIGHT)
    )
    return ChartSpec(chart, ())


def _month_label(month: str) -> str:
    """'2026-09' as 'September 2026'."""
    return date.fromisoformat(f"{month}-01").strftime("%B %Y")


BUILDERS: dict[str, Callable[[pd.DataFrame, CaseloadFilters], ChartSpec]] = {
    "requests_by_week_and_site": requests_by_week_and_site,
    "requests_by_week_and_source": requests_by_week_and_source,
    "time_to_first_screening": time_to_first_screening,
    "screening_within_target_by_week": screening_within_target_by_week,
    "answered_in_time_by_urgency": answered_in_time_by_urgency,
    "open_caseload_by_practitioner": open_caseload_by_practitioner,
    "vulnerabilities": vulnerabilities,
    "age_band_and_gender": age_band_and_gender,
    "ethnic_category": ethnic_category,
    "pathway_funnel": pathway_funnel,
    "onward_referrals": onward_referrals,
    "cover_by_hour_and_day": cover_by_hour_and_day,
    "out_of_hours": out_of_hours,
    "activities_by_month": activities_by_month,
}


QUALITY_COLOURS = {**RAG_COLOURS, "none": "#cfd8dc"}
QUALITY_FIELDS = ("month_code", "check")


def data_quality_by_month(rows: list[dict]) -> ChartSpec:
    """The national return's checks (rows) by month (columns), coloured red, amber or green by the share
    valid and labelled with it: a click on a cell lists that month's records to fix for that check."""
    if not rows:
        return ChartSpec(None, QUALITY_FIELDS)
    frame = pd.DataFrame(rows)
    frame["month_code"] = frame["month"].map(lambda first_day: f"{first_day:%Y-%m}")
    frame["month_short"] = frame["month"].map(lambda first_day: f"{first_day:%b %Y}")
    frame["shown"] = frame["share_valid"].map(lambda share: "—" if pd.isna(share) else f"{share:.0%}")
    frame["rag_words"] = frame["rag"].map(national_return.RAG_WORDS)
    frame = frame.drop(columns=["month"])
    months = list(dict.fromkeys(frame["month_short"]))
    checks = list(dict.fromkeys(frame["title"]))
    pick = _pick(*QUALITY_FIELDS)
    base = alt.Chart(_inline(frame)).encode(
        x=alt.X("month_short:O", title="Month", sort=months, scale=alt.Scale(domain=months),
                axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("title:N", title="", sort=checks, scale=alt.Scale(domain=checks),
                axis=alt.Axis(labelLimit=LABEL_LIMIT + 60)),
    )
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("rag:N", title="Share valid",
                        scale=alt.Scale(domain=list(QUALITY_COLOURS), range=list(QUALITY_COLOURS.values())),
                        legend=alt.Legend(labelExpr=_label_expr(national_return.RAG_WORDS), orient="bottom",
                                          direction="horizontal")),
        opacity=_opacity(pick),
        # "Reporting month", not the axis's "Month": a screen reader hears a mark's fields by title, and
        # two of one title would keep only the axis's short "Oct 2026"
        tooltip=[alt.Tooltip("title:N", title="Check"), alt.Tooltip("month_label:N", title="Reporting month"),
                 alt.Tooltip("shown:N", title="Valid"), alt.Tooltip("valid:Q", title="Records valid"),
                 alt.Tooltip("records:Q", title="Records")],
    ).add_params(pick)
    # White on the dark red and green cells, black on amber and grey: readable on each.
    on_dark = alt.condition("datum.rag == 'red' || datum.rag == 'green'", alt.value("white"), alt.value("black"))
    labels = base.mark_text(fontSize=11).encode(text="shown:N", color=on_dark)
    return ChartSpec(alt.layer(cells, labels).properties(height=_rows_height(len(checks))), QUALITY_FIELDS)


def build(key: str, frame: pd.DataFrame, filters: CaseloadFilters) -> ChartSpec:
    """The chart of a measure. Altair's validation on construction is off here (it costs more
    than all the page's SQL); tests/test_caseload.py validates every chart instead."""
    with debug_mode(False):
        return BUILDERS[key](frame, filters)


def vega_lite(chart: alt.TopLevelMixin) -> dict:
    """The chart as a Vega-Lite spec with its (small) data inline, for `st.vega_lite_chart`.

    Not validated here: Altair's schema validation of 14 charts costs more than all the SQL of the
    page, so tests validate every builder's output instead (tests/test_caseload.py), and the page
    caches the specs with the measures.
    """
    spec = chart.to_dict(validate=False)
    # The height is the plotting area's; the width is the column's (see the module's rules).
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    # Altair's default theme fixes a 300 × 300 view; Streamlit sizes charts to their column.
    view = spec.get("config", {}).get("view", {})
    view.pop("continuousWidth", None)
    view.pop("continuousHeight", None)
    if "config" in spec and not view:
        spec["config"].pop("view", None)
        if not spec["config"]:
            del spec["config"]
    return spec


def selected_point(event, fields: tuple[str, ...]) -> dict | None:
    """The clicked mark's key fields from `st.altair_chart(..., on_select=...)`'s state, or None."""
    if not fields or event is None:
        return None
    selection = getattr(event, "selection", None) or (event.get("selection") if isinstance(event, dict) else None)
    points = (selection or {}).get(SELECTION) or []
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        return None
    point = points[0]
    if not all(field in point for field in fields):
        return None
    return {field: point[field] for field in fields}


def format_headline(unit: str, value) -> str:
    """A tile's value: counts as numbers, shares as percentages, times as hours and minutes."""
    if value is None:
        return "—"
    if unit == "share":
        return f"{value:.0%}"
    if unit == "minutes":
        minutes = int(round(value))
        return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
    return f"{int(value):,}"


def format_change(unit: str, value, previous) -> str | None:
    """The change against the previous period, signed; None when either side is missing."""
    if value is None or previous is None:
        return None
    change = value - previous
    if unit == "share":
        return f"{change * 100:+.0f} pts"
    if unit == "minutes":
        sign = "-" if change < 0 else "+"
        return f"{sign}{format_headline('minutes', abs(change))}"
    return f"{int(change):+,}"
