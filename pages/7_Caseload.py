"""Caseload charts for team leads: the service's measures, each clickable through to its requests.

The filters live in the URL query (a view can be shared); the measures come from
services/caseload.py, cached per user, team, filters and data version for a few minutes; the
list under a clicked chart is the only place a client's name appears, and opening it is audited.
"""

from functools import partial

import streamlit as st

from services import caseload, clock, db
from services.caseload import CaseloadFilters, Selection
from services.permissions import Permission
from ui import charts
from ui.export_button import export_button
from ui.guard import app_engine, require
from ui.national_return import month_on_month
from ui.query_filters import FilterBar, FilterKind, QueryFilter, parse

CACHE_SECONDS = 300
ACTIVE_CHART = "caseload_active_chart"
LIST_SHOWN = "caseload_list_shown"
ALL = "all"  # the "no filter" choice of a text filter (ids use 0): a selectbox's None shows no label

user = require(Permission.VIEW_CASELOAD, title="Caseload")
engine = app_engine()
st.title("Caseload")


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False, max_entries=200)
def team_view(user_id: int, team_id: int, role: str, filters: CaseloadFilters, stamp: int, _user, _engine):
    """Every measure for these filters, and each chart's Vega-Lite spec and click fields.

    The key holds the user and their team (never just the filters), and the data version.
    """
    with db.reading(_engine) as session:
        results = caseload.all_measures(session, _user, filters)
    specs = {}
    for chart_key in caseload.CHART_MEASURES:
        spec = charts.build(chart_key, results[chart_key], filters)
        specs[chart_key] = (None if spec.chart is None else charts.vega_lite(spec.chart), spec.fields)
    return results, specs


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False, max_entries=200)
def team_choices(user_id: int, team_id: int, role: str, stamp: int, _user, _engine):
    with db.reading(_engine) as session:
        return caseload.filter_choices(session, _user)


# Each filter's URL key, its "All" value and its label; the keys are CaseloadFilters.QUERY_NAMES.
SELECTS = (
    ("site_id", "site", FilterKind.INT, 0, "Site"),
    ("source_of_referral", "source", FilterKind.TEXT, ALL, "Source"),
    ("request_type", "type", FilterKind.TEXT, ALL, "Request type"),
    ("urgency", "urgency", FilterKind.TEXT, ALL, "Urgency"),
    ("practitioner_id", "practitioner", FilterKind.INT, 0, "Practitioner"),
    ("age_band", "age", FilterKind.TEXT, ALL, "Age band"),
)


def filter_bar(choices: caseload.FilterChoices) -> CaseloadFilters:
    """The shared URL-kept filter bar (ui/query_filters.py): the link's filters, or this session's."""
    default = CaseloadFilters.default()
    options = {"site_id": choices.sites, "source_of_referral": choices.sources, "request_type": choices.request_types,
               "urgency": choices.urgencies, "practitioner_id": choices.practitioners, "age_band": choices.age_bands}
    bar = FilterBar("caseload", [
        QueryFilter("from", FilterKind.DATE, default=default.start),
        QueryFilter("to", FilterKind.DATE, default=default.end),
        *(QueryFilter(key, kind, default=everything, choices=set(options[name]))
          for name, key, kind, everything, _label in SELECTS),
    ])
    _warn_about_dropped_values(bar)
    bar.start()
    with st.container(border=True):
        columns = st.columns(4)
        columns[0].date_input("From", key=bar.key("from"), format="DD/MM/YYYY")
        columns[1].date_input("To", key=bar.key("to"), format="DD/MM/YYYY")
        for index, (name, key, _kind, everything, label) in enumerate(SELECTS):
            named = options[name]
            columns[(index + 2) % 4].selectbox(
                label, [everything, *named], key=bar.key(key),
                format_func=lambda value, named=named, everything=everything: (
                    "All" if value == everything else named.get(value, str(value))),
            )
    chosen = bar.publish()
    start, end = chosen["from"] or default.start, chosen["to"] or default.end
    if end < start:
        st.warning("The end date is before the start date; showing the start date only.")
        end = start
    filters = CaseloadFilters(start=start, end=end, **{
        name: (None if chosen[key] in (ALL, 0, None) else chosen[key]) for name, key, *_ in SELECTS})
    st.caption(f"Showing requests {filters.describe(choices)}. Compared with "
               f"{clock.format_date(filters.previous().start)} to {clock.format_date(filters.previous().end)}.")
    return filters


def _warn_about_dropped_values(bar: FilterBar) -> None:
    """Say so when a link carries a value this user cannot use (another team's site, a typo)."""
    for query_filter in bar.filters:
        raw = st.query_params.get_all(query_filter.name)
        empty = query_filter.empty()
        spelt_empty = empty.isoformat() if hasattr(empty, "isoformat") else str(empty)
        if raw and raw not in ([""], [spelt_empty]) and parse([query_filter], {query_filter.name: raw})[
                query_filter.name] == empty:
            st.warning(f"Ignored the link's {query_filter.name}: not a value you can choose here.")


def headline_tiles(frame) -> None:
    rows = list(frame.itertuples(index=False))
    for start in range(0, len(rows), 5):
        for column, row in zip(st.columns(5), rows[start:start + 5], strict=False):
            colour = {"higher": "normal", "lower": "inverse"}.get(row.better, "off")
            column.metric(charts.TILE_LABELS.get(row.key, row.label), charts.format_headline(row.unit, row.value),
                          delta=charts.format_change(row.unit, row.value, row.previous), delta_color=colour,
                          help=f"{row.label}. The change is against the previous period of the same length.")


def activate(key: str) -> None:
    st.session_state[ACTIVE_CHART] = key


def requests_list(key: str, point: dict, filters: CaseloadFilters) -> None:
    """The requests behind the clicked mark: read and audited once per selection (and data version),
    then kept for this session's reruns."""
    selection = Selection.of(key, point)
    shown = st.session_state.get(LIST_SHOWN)
    if not shown or shown[0] != (selection, filters, stamp):
        try:
            with db.writing(engine) as session:
                frame, total = caseload.drilldown_rows(session, user, filters, selection)
        except caseload.UnknownSelection:
            st.warning("That part of the chart has no list behind it.")
            return
        shown = ((selection, filters, stamp), frame, total)
        st.session_state[LIST_SHOWN] = shown
    _, frame, total = shown
    st.markdown(f"**Requests behind the selection: {total:,}**"
                + (f" (the newest {len(frame):,} are shown)" if total > len(frame) else ""))
    st.dataframe(caseload.drilldown_display(frame), hide_index=True, key=f"list_{key}")
    export_button(user, "caseload_requests", (filters, selection), key=f"export_{key}")


def chart_panel(key: str, frame, chart: tuple, filters: CaseloadFilters) -> None:
    info = caseload.MEASURES[key]
    spec, fields = chart
    with st.container(border=True):
        st.header(info.title)
        if key == "out_of_hours" and frame["requests"].sum():
            st.metric("Out of hours", f"{frame.loc[frame['out_of_hours'], 'share'].sum():.0%}")
        point = None
        if spec is None:
            st.info("Nothing to show for these filters.")
        elif fields:
            event = st.vega_lite_chart(spec=spec, width="stretch", on_select=partial(activate, key),
                                       selection_mode=charts.SELECTION, key=f"chart_{key}")
            point = charts.selected_point(event, fields)
        else:
            st.vega_lite_chart(spec=spec, width="stretch", key=f"chart_{key}")
        st.caption(info.definition)
        if point is not None and st.session_state.get(ACTIVE_CHART) == key:
            requests_list(key, point, filters)
        elif fields and spec is not None:
            st.caption("Click a bar or cell to list its requests.")


with db.reading(engine) as session:
    stamp = caseload.data_stamp(session, user)
key = (user.id, user.team_id, user.role)
filters = filter_bar(team_choices(*key, stamp, user, engine))
results, specs = team_view(*key, filters, stamp, user, engine)

headline_tiles(results["headline"])
layout = [
    ("requests_by_week_and_site", "requests_by_week_and_source"),
    ("time_to_first_screening", "screening_within_target_by_week"),
    ("open_caseload_by_practitioner", "answered_in_time_by_urgency"),
    ("pathway_funnel", "vulnerabilities"),
    ("age_band_and_gender", "ethnic_category"),
    ("cover_by_hour_and_day", "out_of_hours"),
    ("onward_referrals", "activities_by_month"),
]
for pair in layout:
    for column, chart_key in zip(st.columns(2), pair, strict=True):
        with column:
            chart_panel(chart_key, results[chart_key], specs[chart_key], filters)

month_on_month(engine, user, stamp, clock.today_in_london())
