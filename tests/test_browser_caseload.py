"""In real Chromium, as the team lead on Caseload (issue #13, points 1 and 2), with a realistic team
seeded for the module: twelve weeks of requests at two sites from several agencies, screenings with
vulnerabilities and onward referrals, an open caseload for three members of staff and the queue,
and activities.

- Every chart draws what its measure holds. Read from the drawing itself: Vega's SVG renderer
  gives each mark (bar, heatmap cell) an `aria-label` of its encoded fields and tooltip, "Title:
  value; …"; those are parsed and compared with `services.caseload.all_measures` for the same
  filters, one mark per row, and each mark's box and computed fill say it can be seen and clicked.
- A click on a mark of every clickable chart (every mark of the charts that crashed) lists its
  requests with no error; the list's total is the count the mark shows.
- "Export this view" downloads exactly the list: the .xlsx read back with openpyxl has its total.
"""

import re
import time
from collections import Counter
from datetime import date, datetime, timedelta
from random import Random

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from models import Activity, AuditEvent, OnwardReferral, Person, Request, Screening, ScreeningVulnerability
from services import caseload, clock, db
from services.caseload import CaseloadFilters
from tests.browser import (  # noqa: F401
    LIVE_ELEMENT,
    browser,
    chart_under_heading,
    drawn_rect_marks,
    idle,
    live_app,
    page,
    sign_in,
)
from ui import charts

pytestmark = pytest.mark.browser

TARGETS = {"emergency": timedelta(hours=1), "urgent": timedelta(hours=4), "routine": timedelta(days=3)}
SOURCES = {"police": 6, "courts": 3, "probation": 2, "self": 1, "solicitor": 1}
VULNERABILITIES = ("mental_health", "drugs", "alcohol", "housing", "suicide_self_harm", "autism", "debt")
SERVICES = ("community_mental_health", "drug_alcohol_service", "housing", "talking_therapies", "crisis_team")
OUTCOMES = ("no_further_action", "further_assessment", "onward_referral", "onward_referral", "mha_assessment")
ERROR_BOX = "This app has encountered an error"


def _weighted(rng: Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def seed_team(engine, staff, now: datetime) -> None:
    """About 170 requests over the default twelve weeks (and a few before), the newest 24 open."""
    rng = Random(13)
    start = clock.from_london(CaseloadFilters.default().start, datetime.min.time())
    span = (now - timedelta(minutes=30) - start).total_seconds()
    holders = [staff.practitioner, staff.second_practitioner, staff.team_lead, None]
    with db.writing(engine) as session:
        people = []
        for number in range(110):
            age = rng.choice([15, 19, 23, 31, 38, 45, 52, 67, 72])
            person = Person(team_id=staff.team.id, given_name=f"Client{number}", family_name="Testperson",
                            date_of_birth=date(now.year - age, rng.randint(1, 12), rng.randint(1, 28)),
                            nhs_number_status="not_known", gender_identity=rng.choice("1112X"),
                            ethnic_category=rng.choice(["A", "A", "A", "C", "N", "H", "M", "99"]),
                            given_name_key=f"client{number}", family_name_key="testperson")
            session.add(person)
            people.append(person)
        session.flush()
        moments = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(160))
        moments = [start - timedelta(days=rng.uniform(1, 60)) for _ in range(12)] + moments  # the period before
        open_from = len(moments) - 24
        for index, received in enumerate(moments):
            urgency = _weighted(rng, {"emergency": 1, "urgent": 3, "routine": 3})
            kind = "screening" if rng.random() < 0.75 else "advice"
            person = rng.choice(people) if kind == "screening" or rng.random() < 0.5 else None
            request = Request(
                reference=f"R-BROWSER-{index:04d}", team_id=staff.team.id, site_id=staff.sites[index % 2].id,
                received_at=received, source_of_referral=_weighted(rng, SOURCES), requester_name="PC Officer",
                request_type=kind, urgency=urgency, reason="Concern for welfare", status="closed",
                due_at=received + TARGETS[urgency], person_id=person.id if person else None,
                created_by_id=staff.practitioner.id,
            )
            if index >= open_from:  # the open caseload: a few each, some overdue, some in the queue
                holder = holders[index % len(holders)]
                request.status = "new" if holder is None else rng.choice(["allocated", "in_progress"])
                request.allocated_to_id = holder.id if holder else None
                request.allocated_at = received + timedelta(minutes=5) if holder else None
                if request.due_at < now and rng.random() < 0.5:
                    request.first_response_at = min(now, received + TARGETS[urgency] * rng.uniform(0.2, 1.5))
            else:
                holder = rng.choice(holders[:3])
                request.allocated_to_id, request.allocated_at = holder.id, received + timedelta(minutes=5)
                request.first_response_at = received + TARGETS[urgency] * rng.uniform(0.1, 1.4)
                request.closed_at = request.first_response_at + timedelta(hours=2)
            session.add(request)
            session.flush()
            if person is None or kind != "screening" or rng.random() < 0.25:
                continue
            screened_at = received + timedelta(hours=rng.lognormvariate(0.9, 0.8))
            if screened_at > now:
                continue
            screening = Screening(team_id=staff.team.id, person_id=person.id, request_id=request.id,
                                  practitioner_id=staff.practitioner.id, screened_at=screened_at,
                                  status="draft" if rng.random() < 0.05 else "complete", outcome=rng.choice(OUTCOMES))
            session.add(screening)
            session.flush()
            for code in rng.sample(VULNERABILITIES, rng.randint(1, 3)):
                session.add(ScreeningVulnerability(screening_id=screening.id, code=code))
            if screening.outcome in ("further_assessment", "onward_referral"):
                for service in rng.sample(SERVICES, rng.randint(1, 2)):
                    status = rng.choice(["made", "accepted", "accepted", "declined"])
                    attendance = rng.choice([None, "5", "3"]) if status == "accepted" else None
                    session.add(OnwardReferral(team_id=staff.team.id, person_id=person.id,
                                               screening_id=screening.id, service=service,
                                               referred_on=clock.to_london(screened_at).date(), status=status,
                                               attendance=attendance))
        for weeks_ago in range(0, 11, 2):
            on = clock.today_in_london() - timedelta(weeks=weeks_ago, days=1)
            session.add(Activity(team_id=staff.team.id, kind="mappa_meeting", activity_on=on,
                                 practitioner_id=staff.practitioner.id))
            session.add(Activity(team_id=staff.team.id, kind="training", activity_on=on - timedelta(days=2),
                                 practitioner_id=staff.second_practitioner.id, number_trained=rng.randint(5, 20)))


@pytest.fixture(scope="module")
def measures(live_app):  # noqa: F811
    """The seeded team's measures for the page's default filters, as the page itself works them out."""
    seed_team(live_app.engine, live_app.staff, clock.now())
    with db.reading(live_app.engine) as session:
        results = caseload.all_measures(session, live_app.staff.team_lead, CaseloadFilters.default())
    for key in caseload.CHART_MEASURES:
        assert charts.build(key, results[key], CaseloadFilters.default()).chart is not None, key
    return results


# What each chart's marks say, as titled in its tooltips: (the titles naming a mark, the title of
# its count) and the same read from the measure's frame.
def _weeks(frame):
    return frame["week"].map(clock.format_date)


EXPECTED = {
    "requests_by_week_and_site": (("Week beginning", "Site"), "Requests",
                                  lambda f: zip(_weeks(f), f["site"], f["requests"], strict=True)),
    "requests_by_week_and_source": (("Week beginning", "Source"), "Requests",
                                    lambda f: zip(_weeks(f), f["source_label"], f["requests"], strict=True)),
    "time_to_first_screening": (("Time to screening",), "Screened requests",
                                lambda f: zip(f["label"], f["requests"], strict=True)),
    "screening_within_target_by_week": (("Week beginning", "Time to screening"), "Screened requests",
                                        lambda f: zip(_weeks(f), f["rag_label"], f["requests"], strict=True)),
    "open_caseload_by_practitioner": (
        ("Allocated to", "State"), "Open requests",
        lambda f: [(name, charts.OPEN_STATES[state], count) for name, overdue, not_overdue in
                   zip(f["practitioner"], f["overdue"], f["not_overdue"], strict=True)
                   for state, count in (("overdue", overdue), ("not_overdue", not_overdue))]),
    "answered_in_time_by_urgency": (("Urgency",), "Answered or due",
                                    lambda f: zip(f["urgency_label"], f["answerable"], strict=True)),
    "pathway_funnel": (("Stage",), "Requests", lambda f: zip(f["label"], f["requests"], strict=True)),
    "vulnerabilities": (("Vulnerability",), "People", lambda f: zip(f["label"], f["people"], strict=True)),
    "age_band_and_gender": (("Age band", "Gender identity"), "People",
                            lambda f: zip(f["age_band_label"], f["gender_label"], f["people"], strict=True)),
    "ethnic_category": (("Ethnic category",), "People", lambda f: zip(f["label"], f["people"], strict=True)),
    "cover_by_hour_and_day": (
        ("Day", "Hour (London)"), "Requests",
        lambda f: zip(f["day"], f["hour"].map(lambda hour: f"{hour:02d}:00–{hour:02d}:59"), f["requests"],
                      strict=True)),
    "out_of_hours": (("Received",), "Requests", lambda f: zip(f["label"], f["requests"], strict=True)),
    "onward_referrals": (("Service", "Outcome"), "Onward referrals",
                         lambda f: zip(f["service_label"], f["outcome_label"], f["referrals"], strict=True)),
    # The month's own title is the axis's (its ISO key, shown on the axis as mm/yyyy).
    "activities_by_month": (("Month", "Activity"), "Meetings or sessions",
                            lambda f: zip(f["month"], f["kind_label"], f["sessions"], strict=True)),
}
# The charts whose list has exactly as many requests as the mark counts (a request can hold two
# referrals to one service with one outcome, so the onward referrals' list may be shorter).
EXACT_LIST = set(EXPECTED) - {"onward_referrals", "activities_by_month"}
EVERY_MARK = ("answered_in_time_by_urgency", "pathway_funnel")  # charts clicked on every mark
SOME_MARKS = {"cover_by_hour_and_day": 3}  # and these on several non-first marks


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def open_caseload_page(page, live_app) -> None:  # noqa: F811
    sign_in(page, live_app, "lead")
    page.get_by_role("link", name="Caseload").click()
    page.get_by_role("heading", name="Caseload", exact=True).wait_for()
    idle(page)


def panel(page, key: str):  # noqa: F811
    heading = page.get_by_role("heading", name=caseload.MEASURES[key].title, exact=True)
    return page.locator('[data-testid="stVerticalBlock"]', has=heading).last


def drawn_marks(page, key: str) -> list[dict]:  # noqa: F811
    """The chart's bars or cells as drawn: each one's aria-label parsed, its box and computed fill."""
    return drawn_rect_marks(chart_under_heading(page, caseload.MEASURES[key].title))


def axis_labels(page, key: str) -> list[str]:  # noqa: F811
    chart = chart_under_heading(page, caseload.MEASURES[key].title)
    return chart.locator("g.role-axis-label text").evaluate_all("texts => texts.map(text => text.textContent)")


def visible(mark: dict) -> bool:
    return mark["width"] >= 1 and mark["height"] >= 1 and mark["fill"] not in ("none", "rgba(0, 0, 0, 0)", "")


def test_every_chart_draws_a_visible_mark_for_each_row_of_its_measure(page, live_app, measures):  # noqa: F811
    open_caseload_page(page, live_app)
    for key, (names, count_title, rows_of) in EXPECTED.items():
        drawn = drawn_marks(page, key)
        expected = Counter({tuple(str(value) for value in row[:-1]): int(row[-1])
                            for row in rows_of(measures[key]) if row[-1]})
        shown = Counter()
        for mark in drawn:
            count = _number(mark["fields"].get(count_title, "0"))
            if count:
                assert visible(mark), (key, mark)
                shown[tuple(mark["fields"][name] for name in names)] += count
        assert shown == expected, key
        assert len(drawn) >= len(expected), key

    # The open caseload: every person named on the axis, their bar's length in proportion to its count.
    practitioners = list(measures["open_caseload_by_practitioner"]["practitioner"])
    assert len(practitioners) == 4  # three members of staff and the queue
    assert set(practitioners) <= set(axis_labels(page, "open_caseload_by_practitioner"))
    segments = [mark for mark in drawn_marks(page, "open_caseload_by_practitioner") if visible(mark)]
    per_request = {round(mark["width"] / _number(mark["fields"]["Open requests"]), 1) for mark in segments}
    assert max(per_request) - min(per_request) <= 0.5, per_request

    # Time to first screening: bars standing on one baseline, their heights in proportion to the counts.
    bars = [mark for mark in drawn_marks(page, "time_to_first_screening") if visible(mark)]
    assert len(bars) >= 5
    assert max(bar["y"] + bar["height"] for bar in bars) - min(bar["y"] + bar["height"] for bar in bars) <= 1
    per_request = [bar["height"] / _number(bar["fields"]["Screened requests"]) for bar in bars]
    assert max(per_request) - min(per_request) <= 0.5
    assert all(bar["width"] > 10 for bar in bars)  # bars, not dashes

    # Tooltips carry UK dates: hover a week's bar.
    week_bar = next(mark for mark in drawn_marks(page, "requests_by_week_and_site") if visible(mark))
    page.mouse.move(week_bar["x"] + week_bar["width"] / 2, week_bar["y"] + week_bar["height"] / 2)
    tooltip = page.locator("#vg-tooltip-element")
    tooltip.get_by_text(re.compile(r"^\d{2}/\d{2}/\d{4}$")).wait_for()
    assert not re.search(r"\d{4}-\d{2}-\d{2}", tooltip.inner_text())


def clickable(page, key: str) -> list[dict]:  # noqa: F811
    return [mark for mark in drawn_marks(page, key) if visible(mark) and mark["width"] >= 4 and mark["height"] >= 4]


def _newest_list_view(engine) -> AuditEvent | None:
    with db.reading(engine) as session:
        return session.exec(select(AuditEvent).where(AuditEvent.action == caseload.DRILLDOWN_ACTION)
                            .order_by(AuditEvent.id.desc()).limit(1)).first()


def click_mark(page, live_app, key: str, index: int) -> tuple[dict, int]:  # noqa: F811
    """Click the centre of the chart's `index`th mark (measured once the page is idle); return the
    mark and the total of the list it opened, once that list is drawn.

    Opening a list writes its audit row (with its total) during the rerun the click starts, so the
    row's arrival says the rerun is under way; `idle` then waits for it to finish, and only the live
    list heading with that total is accepted (never the previous mark's, still on screen).
    """
    idle(page)
    before = _newest_list_view(live_app.engine)
    mark = clickable(page, key)[index]
    page.mouse.click(mark["x"] + mark["width"] / 2, mark["y"] + mark["height"] / 2)
    deadline = time.monotonic() + 20
    while (event := _newest_list_view(live_app.engine)) is None or (before is not None and event.id == before.id):
        assert time.monotonic() < deadline, f"no list opened by a click on {mark['label']!r}"
        time.sleep(0.1)
    assert caseload.MEASURES[key].title in event.detail
    total = int(re.search(r"; (\d+) rows$", event.detail).group(1))
    idle(page)
    panel(page, key).locator(LIVE_ELEMENT).get_by_text(f"Requests behind the selection: {total:,}").wait_for()
    idle(page)
    return mark, total


def assert_no_error(page) -> None:  # noqa: F811
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text(ERROR_BOX).count() == 0


def test_a_click_on_a_mark_of_every_chart_lists_its_requests(page, live_app, measures):  # noqa: F811
    open_caseload_page(page, live_app)
    clicked = Counter()
    for key in EXPECTED:
        if not caseload.MEASURES[key].drilldown:
            continue
        count_title = EXPECTED[key][1]
        marks = clickable(page, key)
        if key in EVERY_MARK:
            indexes = range(len(marks))
        else:  # non-first marks: the second, and for some charts others spread over the chart
            wanted = SOME_MARKS.get(key, 1)
            indexes = sorted({min(len(marks) - 1, 1 + step * (len(marks) - 2) // max(wanted - 1, 1))
                              for step in range(wanted)})
        for index in indexes:
            mark, total = click_mark(page, live_app, key, index)
            assert_no_error(page)
            count = _number(mark["fields"][count_title])
            assert total == count if key in EXACT_LIST else 0 < total <= count, (key, mark["label"], total)
            clicked[key] += 1
    assert set(clicked) == {key for key in EXPECTED if caseload.MEASURES[key].drilldown}
    for key in EVERY_MARK:
        assert clicked[key] == len([row for row in EXPECTED[key][2](measures[key]) if row[-1]]), key
    assert clicked["cover_by_hour_and_day"] >= 3


@pytest.mark.parametrize(("key", "mark_title", "mark_value"), [
    ("answered_in_time_by_urgency", "Urgency", "Routine"),  # the crash: many never screened
    ("requests_by_week_and_site", None, None),  # the chart that showed no list at all
])
def test_the_list_behind_a_mark_exports_with_its_total(page, live_app, measures, tmp_path,  # noqa: F811
                                                      key, mark_title, mark_value):
    open_caseload_page(page, live_app)
    marks = clickable(page, key)
    index = 1 if mark_title is None else next(
        number for number, mark in enumerate(marks) if mark["fields"][mark_title] == mark_value)
    _mark, total = click_mark(page, live_app, key, index)
    assert_no_error(page)
    assert total > 0
    with page.expect_download() as download_info:
        panel(page, key).get_by_role("button", name="Export this view").click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert saved.suffix == ".xlsx"
    sheet = load_workbook(saved, read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("Reference", "Received")
    assert len(rows) - 1 == total
    assert all(str(row[0]).startswith("R-BROWSER-") for row in rows[1:])
    assert_no_error(page)
