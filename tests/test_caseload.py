"""Caseload measures against a small hand-made team whose every answer is worked out below.

The period is Monday 24 March to Sunday 6 April 2025 (London), two London weeks that straddle the
start of summer time (01:00 UTC on Sunday 30 March). "Now" is Monday 7 April 2025 12:00 UTC.

| req | received (London)       | UTC                | site | source    | urgency   | person | screened (complete)   |
|-----|-------------------------|--------------------|------|-----------|-----------|--------|-----------------------|
| R1  | Sun 30 Mar 23:30 BST    | 30 Mar 22:30       | A    | police    | urgent    | P17    | +4 h exactly (amber)  |
| R2  | Mon 31 Mar 00:30 BST    | 30 Mar 23:30       | B    | courts    | urgent    | P18    | never                 |
| R3  | Sat 29 Mar 23:59 GMT    | 29 Mar 23:59       | A    | police    | emergency | P30    | +1 h (green)          |
| R4  | Mon 24 Mar 00:00 GMT    | 24 Mar 00:00       | B    | police    | routine   | none   | —                     |
| R6  | Sun 6 Apr 23:30 BST     | 6 Apr 22:30        | A    | probation | routine   | P30    | +6 h (red)            |
| R9  | Wed 2 Apr 12:00 BST     | 2 Apr 11:00        | A    | probation | routine   | P70    | draft only            |
| R5  | Sun 23 Mar 23:59:59 GMT | previous period    | A    | police    | urgent    | P30    | +10 h (red)           |
| R7  | Mon 7 Apr 00:10 BST     | 6 Apr 23:10        | A    | police    | urgent    | P30    | after the period      |
| R8  | other team, in period   |                    |      |           |           |        |                       |

P17 born 1 June 2007 (17); P18 born 31 March 2007: 18 on the London date of R2, though still 17 on
its UTC date; P30 born 1 January 1995; P70 born 1 January 1955, no gender recorded.
"""

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import pytest
from sqlmodel import select

from models import (
    Activity,
    AuditEvent,
    OnwardReferral,
    Person,
    Request,
    Screening,
    ScreeningVulnerability,
    Setting,
)
from models.codes import Role
from services import caseload, clock, db
from services.caseload import CaseloadFilters, Selection
from services.errors import PermissionDenied
from tests.browser import browser, live_app, page, sign_in  # noqa: F401
from tests.conftest import Staff, make_staff

NOW = datetime(2025, 4, 7, 12, 0, tzinfo=UTC)
PERIOD = CaseloadFilters(start=date(2025, 3, 24), end=date(2025, 4, 6))
WEEK_1, WEEK_2 = date(2025, 3, 24), date(2025, 3, 31)
TARGETS = {"emergency": timedelta(hours=1), "urgent": timedelta(hours=4), "routine": timedelta(days=3)}
CLIENT_NAMES = ("Zebedee", "Quimby", "Yolanda", "Xanthe", "Wilhelmina", "Vortigern", "Ulrika", "Tamsin")


def london(day: date, hours: int, minutes: int = 0, seconds: int = 0) -> datetime:
    return clock.from_london(day, time(hours, minutes, seconds))


@dataclass
class Fixture:
    staff: Staff
    ids: dict[str, int]  # request name -> id
    people: dict[str, int]

    def name_of(self, request_id: int) -> str:
        return next(name for name, value in self.ids.items() if value == request_id)


def build_fixture(engine, staff: Staff | None = None) -> Fixture:
    staff = staff or make_staff(engine)
    site_a, site_b = staff.sites[0].id, staff.sites[1].id
    ids: dict[str, int] = {}
    with db.writing(engine) as session:
        def person(key, given, family, born, gender, ethnic, team_id=staff.team.id):
            row = Person(team_id=team_id, given_name=given, family_name=family, date_of_birth=born,
                         nhs_number_status="not_known", gender_identity=gender, ethnic_category=ethnic,
                         given_name_key=given.lower(), family_name_key=family.lower())
            session.add(row)
            session.flush()
            return row.id

        people = {
            "P17": person("P17", "Zebedee", "Quimby", date(2007, 6, 1), "1", "A"),
            "P18": person("P18", "Yolanda", "Xanthe", date(2007, 3, 31), "2", "A"),
            "P30": person("P30", "Wilhelmina", "Vortigern", date(1995, 1, 1), "1", "N"),
            "P70": person("P70", "Ulrika", "Tamsin", date(1955, 1, 1), None, None),
            "OTHER": person("OTHER", "Other", "Teamperson", date(1990, 1, 1), "1", "A", staff.other_team.id),
        }

        def request(name, received, *, site=site_a, source="police", urgency="urgent", person_key=None,
                    status="closed", allocated=None, responded_after=None, closed_at=None, team=None,
                    allocated_at=None):
            row = Request(
                reference=f"R-TEST-{name}", team_id=team or staff.team.id, site_id=site, received_at=received,
                source_of_referral=source, requester_name="PC Officer", request_type="screening",
                urgency=urgency, reason="Concern", status=status, due_at=received + TARGETS[urgency],
                person_id=people[person_key] if person_key else None,
                allocated_to_id=allocated.id if allocated else None,
                allocated_at=allocated_at or (received + timedelta(minutes=5) if allocated else None),
                first_response_at=received + responded_after if responded_after else None,
                closed_at=closed_at, created_by_id=staff.practitioner.id,
            )
            session.add(row)
            session.flush()
            ids[name] = row.id
            return row

        lead, practitioner = staff.team_lead, staff.practitioner
        r1 = request("R1", london(date(2025, 3, 30), 23, 30), person_key="P17", allocated=lead,
                     responded_after=timedelta(hours=1), closed_at=datetime(2025, 3, 31, 4, tzinfo=UTC))
        request("R2", london(date(2025, 3, 31), 0, 30), site=site_b, source="courts", person_key="P18", status="new")
        r3 = request("R3", london(date(2025, 3, 29), 23, 59), urgency="emergency", person_key="P30", allocated=lead,
                     responded_after=timedelta(minutes=30), closed_at=datetime(2025, 3, 31, tzinfo=UTC))
        request("R4", london(date(2025, 3, 24), 0, 0), site=site_b, urgency="routine", allocated=lead,
                responded_after=timedelta(days=1), closed_at=datetime(2025, 3, 24, 1, tzinfo=UTC))
        r5 = request("R5", london(date(2025, 3, 23), 23, 59, 59), person_key="P30", allocated=lead,
                     responded_after=timedelta(hours=10), closed_at=datetime(2025, 3, 25, tzinfo=UTC))
        r6 = request("R6", london(date(2025, 4, 6), 23, 30), source="probation", urgency="routine",
                     person_key="P30", status="in_progress", allocated=practitioner)
        r7 = request("R7", london(date(2025, 4, 7), 0, 10), person_key="P30", allocated=lead,
                     responded_after=timedelta(minutes=20), closed_at=datetime(2025, 4, 7, 2, tzinfo=UTC))
        r9 = request("R9", london(date(2025, 4, 2), 12, 0), source="probation", urgency="routine",
                     person_key="P70", status="allocated", allocated=practitioner, responded_after=timedelta(days=4))
        r8 = request("R8", london(date(2025, 3, 26), 10, 0), site=staff.sites[2].id, person_key="OTHER",
                     status="new", team=staff.other_team.id)

        def screening(req, after, person_key, *, status="complete", outcome=None, vulnerabilities=(), team=None):
            row = Screening(team_id=team or staff.team.id, person_id=req.person_id, request_id=req.id,
                            practitioner_id=practitioner.id, status=status, screened_at=req.received_at + after,
                            outcome=outcome)
            session.add(row)
            session.flush()
            for code in vulnerabilities:
                session.add(ScreeningVulnerability(screening_id=row.id, code=code))
            return row

        def referral(at, service, status, attendance=None, team=None):
            session.add(OnwardReferral(team_id=team or staff.team.id, person_id=at.person_id, screening_id=at.id,
                                       service=service, referred_on=date(2025, 4, 1), status=status,
                                       attendance=attendance))

        screening(r1, timedelta(hours=4), "P17", outcome="no_further_action", vulnerabilities=["autism"])
        # A second, later complete screening of R1 does not move its first screening.
        screening(r1, timedelta(hours=30), "P17", outcome="no_further_action")
        s3 = screening(r3, timedelta(hours=1), "P30", outcome="further_assessment",
                       vulnerabilities=["mental_health", "drugs"])
        referral(s3, "crisis_team", "accepted", attendance="5")
        referral(s3, "housing", "made")
        s6 = screening(r6, timedelta(hours=6), "P30", outcome="onward_referral",
                       vulnerabilities=["mental_health", "alcohol"])
        referral(s6, "drug_alcohol_service", "accepted")
        s9 = screening(r9, timedelta(hours=2), "P70", status="draft", outcome="onward_referral",
                       vulnerabilities=["housing"])
        referral(s9, "housing", "attended")  # from a draft: not counted anywhere
        screening(r5, timedelta(hours=10), "P30", outcome="no_further_action", vulnerabilities=["debt"])
        screening(r7, timedelta(minutes=30), "P30", outcome="further_assessment", vulnerabilities=["veteran"])
        s8 = screening(r8, timedelta(hours=1), "OTHER", outcome="further_assessment",
                       vulnerabilities=["mental_health"], team=staff.other_team.id)
        referral(s8, "crisis_team", "attended", team=staff.other_team.id)

        def activity(kind, on, practitioner_id=practitioner.id, trained=None, team=None):
            session.add(Activity(team_id=team or staff.team.id, kind=kind, activity_on=on,
                                 practitioner_id=practitioner_id, number_trained=trained))

        activity("mappa_meeting", date(2025, 3, 25))
        activity("training", date(2025, 4, 2), trained=12)
        activity("training", date(2025, 4, 3), practitioner_id=staff.second_practitioner.id, trained=8)
        activity("pre_sentence_report", date(2025, 3, 26))
        activity("mappa_meeting", date(2025, 4, 10))
        activity("mappa_meeting", date(2025, 3, 27), practitioner_id=staff.other_team_practitioner.id,
                 team=staff.other_team.id)
    return Fixture(staff=staff, ids=ids, people=people)


@pytest.fixture
def now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return NOW


@pytest.fixture
def team(engine, now) -> Fixture:
    return build_fixture(engine)


def measure(engine, user, function, filters=PERIOD) -> pd.DataFrame:
    with db.reading(engine) as session:
        return function(session, user, filters)


def records(frame: pd.DataFrame, *columns: str) -> set[tuple]:
    return {tuple(row) for row in frame[list(columns)].itertuples(index=False)}


def drilled(engine, user, selection: Selection, filters=PERIOD) -> list[str]:
    with db.writing(engine) as session:
        frame, total = caseload.drilldown_rows(session, user, filters, selection)
    assert total == len(frame)
    return sorted(reference.removeprefix("R-TEST-") for reference in frame["reference"])


# ------------------------------------------------------------------------------------------------
# Filters


def test_default_period_is_twelve_london_weeks_ending_today():
    filters = CaseloadFilters.default(today=date(2025, 4, 2))  # a Wednesday
    assert filters.start == date(2025, 1, 13) and filters.start.weekday() == 0
    assert filters.end == date(2025, 4, 2)
    assert filters.days == 80  # eleven whole weeks and Monday to Wednesday
    assert filters.previous() == CaseloadFilters(start=date(2024, 10, 25), end=date(2025, 1, 12))
    start, end = PERIOD.utc_range()
    assert start == datetime(2025, 3, 24, 0, tzinfo=UTC)
    assert end == datetime(2025, 4, 6, 23, tzinfo=UTC)  # London midnight in summer time


def test_filters_round_trip_through_the_url_query_and_bad_values_are_reported():
    filters = CaseloadFilters(start=date(2025, 1, 6), end=date(2025, 2, 2), site_id=3, source_of_referral="police",
                              request_type="screening", urgency="urgent", practitioner_id=7, age_band="18-25")
    query = filters.to_query()
    assert query == {"from": "2025-01-06", "to": "2025-02-02", "site": "3", "source": "police",
                     "type": "screening", "urgency": "urgent", "practitioner": "7", "age": "18-25"}
    assert CaseloadFilters.from_query(query) == (filters, [])
    parsed, problems = CaseloadFilters.from_query({"from": "yesterday", "site": "x", "age": "30-40",
                                                   "urgency": "whenever"}, today=date(2025, 4, 2))
    assert parsed == CaseloadFilters.default(today=date(2025, 4, 2))
    assert len(problems) == 4


def test_london_offsets_match_zoneinfo_across_years():
    periods = caseload.london_offsets(2019, 2031)
    assert len(periods) == 13
    for moment in (datetime(2019, 1, 1, tzinfo=UTC) + timedelta(hours=hours) for hours in range(0, 13 * 8760, 7)):
        shifted = sum(minutes for begin, until, minutes in periods if begin <= moment < until)
        assert shifted == moment.astimezone(clock.LONDON).utcoffset().total_seconds() / 60


# ------------------------------------------------------------------------------------------------
# Each measure, worked out by hand from the table above


def test_headline_figures_against_the_previous_period(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.headline).set_index("key")
    expected = {
        # key: (this period, previous period)
        "received": (6, 1),  # R1 R2 R3 R4 R6 R9 | R5
        "share_screened": (3 / 6, 1.0),  # R1 R3 R6 (R9 only a draft) | R5
        "median_minutes": (240.0, 600.0),  # of 60, 240, 360 minutes
        "p90_minutes": (336.0, 600.0),  # 240 + 0.8 × (360 − 240)
        "share_within_target": (2 / 3, 0.0),  # R3, and R1 exactly at the 4-hour target
        "share_answered_in_time": (3 / 5, 0.0),  # R1 R3 R4 of R1 R2 R3 R4 R9 (R6 not yet due) | R5 late
        "open_now": (3, 1),  # R2 R6 R9 | on 24 March 12:00 UTC: R5
        "waiting_now": (1, 0),  # R2 | R5 was allocated
        # Overdue as on the triage queue: past due with no first response yet.
        "overdue_now": (1, 0),  # R2 (R9 past due but answered late) | R5 answered before then
    }
    for key, (value, previous) in expected.items():
        assert frame.loc[key, "value"] == pytest.approx(value), key
        assert frame.loc[key, "previous"] == pytest.approx(previous), key


def test_requests_per_week_use_london_monday_weeks(engine, team):
    by_site = measure(engine, team.staff.team_lead, caseload.requests_by_week_and_site)
    site_a, site_b = (site.name for site in team.staff.sites[:2])
    # R1 (Sunday 23:30 BST) stays in the first week; R2 (Monday 00:30 BST, still Sunday in UTC)
    # starts the second; R6 (Sunday 23:30 BST) is in; R7 (Monday 00:10 BST) is out.
    assert records(by_site, "week", "site", "requests") == {
        (WEEK_1, site_a, 2), (WEEK_1, site_b, 1), (WEEK_2, site_a, 2), (WEEK_2, site_b, 1)}
    by_source = measure(engine, team.staff.team_lead, caseload.requests_by_week_and_source)
    assert records(by_source, "week", "source", "source_label", "requests") == {
        (WEEK_1, "police", "Police", 3), (WEEK_2, "courts", "Courts", 1), (WEEK_2, "probation", "Probation", 2)}


def test_time_to_first_screening_distribution_marks_the_target(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.time_to_first_screening)
    assert list(frame["label"]) == ["0 – 1 h", "1 h – 2 h", "2 h – 3 h", "3 h – 4 h", "4 h – 5 h", "5 h – 6 h",
                                    "6 h – 7 h", "7 h – 8 h", "over 8 h"]
    # R3 at exactly 1 h is in the first bin, R1 at exactly 4 h in the last bin within target, R6 at 6 h.
    assert list(frame["requests"]) == [1, 0, 0, 1, 0, 1, 0, 0, 0]
    assert list(frame["within_target"]) == [True] * 4 + [False] * 5
    assert set(frame["target_minutes"]) == {240}


def test_screening_target_is_a_setting(engine, team):
    with db.writing(engine) as session:
        session.add(Setting(key="screening_target_minutes", value="360"))
    frame = measure(engine, team.staff.team_lead, caseload.time_to_first_screening)
    # Quarters of 6 h: 1 h in (0, 1.5 h], 4 h in (3 h, 4.5 h], 6 h exactly in (4.5 h, 6 h].
    assert list(frame["requests"]) == [1, 0, 1, 1, 0, 0, 0, 0, 0]
    headline = measure(engine, team.staff.team_lead, caseload.headline).set_index("key")
    assert headline.loc["share_within_target", "value"] == 1.0  # R6 at exactly 6 h is now within


def test_screened_within_target_per_week(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.screening_within_target_by_week)
    assert records(frame, "week", "rag", "requests", "share_within_target") == {
        (WEEK_1, "green", 1, 1.0),  # R3: 1 h is within 75% of 4 h
        (WEEK_1, "amber", 1, 1.0),  # R1: exactly 4 h
        (WEEK_2, "red", 1, 0.0),  # R6: 6 h
    }


def test_answered_by_due_time_by_urgency(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.answered_in_time_by_urgency)
    assert records(frame, "urgency", "answerable", "answered_in_time") == {
        ("emergency", 1, 1), ("urgent", 2, 1), ("routine", 2, 1)}


def test_open_caseload_per_practitioner_with_overdue(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.open_caseload_by_practitioner)
    assert records(frame, "practitioner", "open", "overdue", "not_overdue") == {
        ("Priya Practitioner", 2, 0, 2),  # R6 not yet due; R9 past due but answered (late)
        ("Not allocated", 1, 1, 0),  # R2
    }


def test_vulnerabilities_share_of_screened_people(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.vulnerabilities)
    # Screened people: P17 (R1) and P30 (R3 and R6), counted once each.
    assert set(frame["screened_people"]) == {2}
    assert records(frame, "code", "people", "share") == {
        ("mental_health", 1, 0.5), ("drugs", 1, 0.5), ("alcohol", 1, 0.5), ("autism", 1, 0.5)}
    assert frame.loc[frame["code"] == "mental_health", "label"].item() == "Mental health"


def test_age_band_at_the_london_date_and_gender(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.age_band_and_gender)
    assert records(frame, "age_band", "gender", "people") == {
        ("10-17", "1", 1),  # P17
        ("18-25", "2", 1),  # P18: 18 on the London date of R2 (17 on its UTC date)
        ("26-64", "1", 1),  # P30, once although two requests
        ("65+", "X", 1),  # P70, no gender recorded
    }


def test_age_band_filter_uses_the_same_rule(engine, team):
    lead = team.staff.team_lead
    youth = CaseloadFilters(start=PERIOD.start, end=PERIOD.end, age_band="10-17")
    assert measure(engine, lead, caseload.headline, youth).set_index("key").loc["received", "value"] == 1  # R1
    adults = CaseloadFilters(start=PERIOD.start, end=PERIOD.end, age_band="18-25")
    assert measure(engine, lead, caseload.headline, adults).set_index("key").loc["received", "value"] == 1  # R2


def test_ethnic_category(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.ethnic_category)
    assert records(frame, "ethnic_category", "label", "people") == {
        ("A", "White British", 2), ("N", "African", 1), ("99", "Not known", 1)}


def test_pathway_funnel(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.pathway_funnel)
    assert list(frame["stage"]) == ["received", "screened", "further_assessment", "referred_on", "attended"]
    assert list(frame["requests"]) == [6, 3, 1, 2, 1]  # R3 assessed; R3 and R6 referred; R3 attended


def test_onward_referrals_by_service_and_outcome(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.onward_referrals)
    assert records(frame, "service", "outcome", "referrals") == {
        ("crisis_team", "attended", 1),  # status accepted, attendance 5 (attended on time)
        ("housing", "made", 1),
        ("drug_alcohol_service", "accepted", 1),
    }


def test_cover_by_london_hour_and_day(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.cover_by_hour_and_day)
    assert records(frame, "day", "hour", "requests") == {
        ("Monday", 0, 2),  # R2 00:30 BST, R4 00:00
        ("Wednesday", 12, 1),  # R9
        ("Saturday", 23, 1),  # R3
        ("Sunday", 23, 2),  # R1, R6 (both 22:30 UTC)
    }


def test_out_of_hours_share(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.out_of_hours).set_index("category")
    assert frame.loc["weekend", "requests"] == 3
    assert frame.loc["weekday_evening_night", "requests"] == 2
    assert frame.loc["weekday_day", "requests"] == 1
    assert frame.loc[frame["out_of_hours"], "share"].sum() == pytest.approx(5 / 6)


def test_mappa_meetings_and_training_per_month(engine, team):
    frame = measure(engine, team.staff.team_lead, caseload.activities_by_month)
    assert records(frame, "month", "kind", "sessions", "people_trained") == {
        ("2025-03", "mappa_meeting", 1, 0), ("2025-04", "training", 2, 20)}
    one = CaseloadFilters(start=PERIOD.start, end=PERIOD.end, practitioner_id=team.staff.second_practitioner.id)
    frame = measure(engine, team.staff.team_lead, caseload.activities_by_month, one)
    assert records(frame, "month", "kind", "sessions", "people_trained") == {("2025-04", "training", 1, 8)}


def test_an_empty_period_gives_empty_measures_and_no_errors(engine, team):
    empty = CaseloadFilters(start=date(2020, 1, 6), end=date(2020, 1, 12))
    with db.reading(engine) as session:
        results = caseload.all_measures(session, team.staff.team_lead, empty)
    headline = results["headline"].set_index("key")
    assert headline.loc["received", "value"] == 0
    assert headline.loc["share_screened", "value"] is None
    assert headline.loc["median_minutes", "value"] is None
    assert headline.loc["open_now", "value"] == 3  # snapshots are of now, whatever the dates
    for key in ("requests_by_week_and_site", "requests_by_week_and_source", "screening_within_target_by_week",
                "vulnerabilities", "age_band_and_gender", "ethnic_category", "onward_referrals",
                "cover_by_hour_and_day", "activities_by_month"):
        assert results[key].empty, key
    assert results["time_to_first_screening"]["requests"].sum() == 0
    assert list(results["pathway_funnel"]["requests"]) == [0, 0, 0, 0, 0]
    assert results["out_of_hours"]["requests"].sum() == 0


def test_filters_narrow_every_count(engine, team):
    site_b = team.staff.sites[1].id
    lead = team.staff.team_lead
    only_b = CaseloadFilters(start=PERIOD.start, end=PERIOD.end, site_id=site_b)
    assert list(measure(engine, lead, caseload.pathway_funnel, only_b)["requests"]) == [2, 0, 0, 0, 0]  # R2 R4
    by_practitioner = CaseloadFilters(start=PERIOD.start, end=PERIOD.end, practitioner_id=team.staff.practitioner.id)
    assert measure(engine, lead, caseload.headline, by_practitioner).set_index("key").loc["received", "value"] == 2
    routine = CaseloadFilters(start=PERIOD.start, end=PERIOD.end, urgency="routine", source_of_referral="probation")
    assert set(measure(engine, lead, caseload.cover_by_hour_and_day, routine)["requests"]) == {1}  # R6, R9


# ------------------------------------------------------------------------------------------------
# SQL where the databases differ: London time and percentiles


def test_london_hours_and_weeks_in_sql_agree_with_zoneinfo(engine, now):
    staff = make_staff(engine)
    rng = random.Random(5)
    moments = []
    for year in (2023, 2024, 2025):
        for change in caseload._clock_changes(year):
            moments += [change + timedelta(minutes=offset) for offset in (-61, -60, -1, 0, 1, 59, 60, 61)]
    moments += [datetime(2023, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(3 * 525600)) for _ in range(150)]
    with db.writing(engine) as session:
        for moment in moments:
            session.add(Request(team_id=staff.team.id, site_id=staff.sites[0].id, received_at=moment,
                                source_of_referral="police", requester_name="x", request_type="advice",
                                urgency="routine", reason="x", status="closed", due_at=moment,
                                created_by_id=staff.practitioner.id))
    everything = CaseloadFilters(start=date(2023, 1, 1), end=date(2025, 12, 31))
    frame = measure(engine, staff.team_lead, caseload.cover_by_hour_and_day, everything)
    expected = pd.Series([(m.astimezone(clock.LONDON).isoweekday(), m.astimezone(clock.LONDON).hour)
                          for m in moments]).value_counts()
    assert {(row.weekday, row.hour): row.requests for row in frame.itertuples()} == expected.to_dict()
    weeks = measure(engine, staff.team_lead, caseload.requests_by_week_and_site, everything)
    local_days = [m.astimezone(clock.LONDON).date() for m in moments]
    expected_weeks = pd.Series([day - timedelta(days=day.weekday()) for day in local_days]).value_counts()
    assert dict(zip(weeks["week"], weeks["requests"], strict=True)) == expected_weeks.to_dict()


@pytest.mark.parametrize("count", [1, 2, 7, 10, 11, 64])
def test_median_and_90th_percentile_equal_percentile_cont(engine, now, count):
    staff = make_staff(engine)
    rng = random.Random(count)
    delays = [rng.randrange(0, 20 * 3600) for _ in range(count)]
    start = london(date(2025, 3, 3), 9)
    with db.writing(engine) as session:
        for index, delay in enumerate(delays):
            received = start + timedelta(minutes=7 * index)
            row = Request(team_id=staff.team.id, site_id=staff.sites[0].id, received_at=received,
                          source_of_referral="police", requester_name="x", request_type="screening",
                          urgency="routine", reason="x", status="closed", due_at=received,
                          created_by_id=staff.practitioner.id)
            session.add(row)
            person = Person(team_id=staff.team.id, given_name="A", family_name="B", nhs_number_status="not_known",
                            given_name_key="a", family_name_key="b")
            session.add(person)
            session.flush()
            session.add(Screening(team_id=staff.team.id, person_id=person.id, request_id=row.id,
                                  practitioner_id=staff.practitioner.id, status="complete",
                                  screened_at=received + timedelta(seconds=delay)))
    filters = CaseloadFilters(start=date(2025, 3, 3), end=date(2025, 3, 9))
    frame = measure(engine, staff.team_lead, caseload.headline, filters).set_index("key")
    minutes = pd.Series(delays) / 60
    assert frame.loc["median_minutes", "value"] == pytest.approx(minutes.quantile(0.5))
    assert frame.loc["p90_minutes", "value"] == pytest.approx(minutes.quantile(0.9))


# ------------------------------------------------------------------------------------------------
# Who may see what


def test_practitioners_are_refused_on_the_server_and_the_refusal_is_audited(engine, team):
    for function in [info.function for info in caseload.MEASURES.values()] + [caseload.filter_choices]:
        with pytest.raises(PermissionDenied), db.reading(engine) as session:
            function(session, team.staff.practitioner, PERIOD) if function is not caseload.filter_choices \
                else function(session, team.staff.practitioner)
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        caseload.drilldown_rows(session, team.staff.practitioner, PERIOD, Selection.of("pathway_funnel",
                                                                                        {"stage": "received"}))
    with db.reading(engine) as session:
        denials = session.exec(select(AuditEvent).where(AuditEvent.outcome == "denied",
                                                        AuditEvent.action == "view_caseload")).all()
    assert len(denials) == len(caseload.MEASURES) + 2


def test_each_team_sees_only_its_own_requests(engine, team):
    other_lead = team.staff.other_team_lead
    assert list(measure(engine, other_lead, caseload.pathway_funnel)["requests"]) == [1, 1, 1, 1, 1]  # R8
    assert records(measure(engine, other_lead, caseload.activities_by_month), "kind", "sessions") == {
        ("mappa_meeting", 1)}
    # An administrator sees the team their account belongs to.
    admin = measure(engine, team.staff.administrator, caseload.pathway_funnel)
    assert list(admin["requests"]) == [6, 3, 1, 2, 1]


def test_an_administrator_has_the_permission_and_a_practitioner_does_not():
    from services.permissions import Permission, has_permission

    def user(role):
        from models import User
        return User(username=role, full_name=role, role=role, team_id=1)

    assert has_permission(user(Role.TEAM_LEAD), Permission.VIEW_CASELOAD)
    assert has_permission(user(Role.ADMINISTRATOR), Permission.VIEW_CASELOAD)
    assert not has_permission(user(Role.PRACTITIONER), Permission.VIEW_CASELOAD)


def test_chart_data_hold_no_client_name_or_identifier(engine, team):
    with db.reading(engine) as session:
        results = caseload.all_measures(session, team.staff.team_lead, PERIOD)
    text = json.dumps({key: frame.astype(str).to_dict("records") for key, frame in results.items()})
    for name in CLIENT_NAMES:
        assert name not in text
    assert "R-TEST" not in text
    for key, frame in results.items():
        assert "person_id" not in frame.columns and "request_id" not in frame.columns, key


# ------------------------------------------------------------------------------------------------
# The list behind a selected mark: exactly those requests, audited


@pytest.mark.parametrize(
    ("measure_key", "values", "expected"),
    [
        ("requests_by_week_and_site", {"week": "2025-03-24", "site_id": "A"}, ["R1", "R3"]),
        ("requests_by_week_and_site", {"week": "2025-03-31", "site_id": "B"}, ["R2"]),
        ("requests_by_week_and_source", {"week": "2025-03-31", "source": "probation"}, ["R6", "R9"]),
        ("time_to_first_screening", {"bin": 3}, ["R1"]),
        ("time_to_first_screening", {"bin": 0}, ["R3"]),
        ("screening_within_target_by_week", {"week": "2025-03-31", "rag": "red"}, ["R6"]),
        ("answered_in_time_by_urgency", {"urgency": "routine"}, ["R4", "R9"]),
        ("open_caseload_by_practitioner", {"practitioner_id": "practitioner", "state": "not_overdue"}, ["R6", "R9"]),
        ("open_caseload_by_practitioner", {"practitioner_id": 0, "state": "overdue"}, ["R2"]),
        ("open_caseload_by_practitioner", {"practitioner_id": 0}, ["R2"]),
        ("vulnerabilities", {"code": "mental_health"}, ["R3"]),  # P30's first such request only
        ("age_band_and_gender", {"age_band": "18-25", "gender": "2"}, ["R2"]),
        ("age_band_and_gender", {"age_band": "26-64", "gender": "1"}, ["R3"]),
        ("ethnic_category", {"ethnic_category": "A"}, ["R1", "R2"]),
        ("pathway_funnel", {"stage": "received"}, ["R1", "R2", "R3", "R4", "R6", "R9"]),
        ("pathway_funnel", {"stage": "referred_on"}, ["R3", "R6"]),
        ("pathway_funnel", {"stage": "attended"}, ["R3"]),
        ("onward_referrals", {"service": "crisis_team", "outcome": "attended"}, ["R3"]),
        ("cover_by_hour_and_day", {"weekday": 7, "hour": 23}, ["R1", "R6"]),
        ("cover_by_hour_and_day", {"weekday": 1, "hour": 0}, ["R2", "R4"]),
        ("out_of_hours", {"category": "weekday_day"}, ["R9"]),
    ],
)
def test_a_selection_lists_exactly_the_requests_counted(engine, team, measure_key, values, expected):
    values = dict(values)
    if values.get("site_id") in ("A", "B"):
        values["site_id"] = team.staff.sites["AB".index(values["site_id"])].id
    if values.get("practitioner_id") == "practitioner":
        values["practitioner_id"] = team.staff.practitioner.id
    assert drilled(engine, team.staff.team_lead, Selection.of(measure_key, values)) == expected


def test_the_list_is_audited_and_shows_names_only_there(engine, team):
    selection = Selection.of("pathway_funnel", {"stage": "screened"})
    with db.writing(engine) as session:
        frame, total = caseload.drilldown_rows(session, team.staff.team_lead, PERIOD, selection)
    assert total == 3
    assert set(frame["person"]) == {"Zebedee Quimby", "Wilhelmina Vortigern"}
    assert list(frame.columns) == [column.key for column in caseload.DRILLDOWN_COLUMNS]
    assert frame["received_at"].iloc[0] > frame["received_at"].iloc[-1]  # newest first
    with db.reading(engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "view_caseload_list")).one()
    assert event.user_id == team.staff.team_lead.id and event.outcome == "success"
    assert "3 rows" in event.detail and "Zebedee" not in event.detail


def test_the_export_can_stream_the_same_query(engine, team):
    selection = Selection.of("cover_by_hour_and_day", {"weekday": 7, "hour": 23})
    with db.reading(engine) as session:
        query, columns = caseload.drilldown_query(session, team.staff.team_lead, PERIOD, selection)
        streamed = list(session.connection().execution_options(yield_per=100).execute(query))
    assert [row.reference for row in streamed] == ["R-TEST-R6", "R-TEST-R1"]
    assert [column.kind for column in columns][:2] == ["identifier", "datetime"]
    assert streamed[0].received_at == london(date(2025, 4, 6), 23, 30)
    assert streamed[0].source == "Probation" and streamed[0].urgency == "Routine"


def test_an_unknown_selection_is_refused(engine, team):
    with pytest.raises(caseload.UnknownSelection), db.reading(engine) as session:
        caseload.drilldown_query(session, team.staff.team_lead, PERIOD, Selection.of("activities_by_month", {}))
    with pytest.raises(caseload.UnknownSelection), db.reading(engine) as session:
        caseload.drilldown_query(session, team.staff.team_lead, PERIOD,
                                 Selection.of("requests_by_week_and_site", {"week": "soon", "site_id": 1}))


def test_every_measure_has_a_definition_in_words():
    for info in caseload.MEASURES.values():
        assert len(info.definition) > 60 and info.title
        assert info.function.definition == info.definition


def test_queries_return_rows_not_objects(engine, team):
    """A guard against drifting into loading rows as objects: every measure is a small frame."""
    with db.reading(engine) as session:
        results = caseload.all_measures(session, team.staff.team_lead, PERIOD)
        assert len(session.identity_map) == 0
    assert all(len(frame) <= 7 * 24 for frame in results.values())


# ------------------------------------------------------------------------------------------------
# The page

PAGE = "pages/7_Caseload.py"


@pytest.fixture
def page_team(sqlite_engine, sqlite_staff, monkeypatch) -> Fixture:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return build_fixture(sqlite_engine, sqlite_staff)


def _charts(test):
    return test.get("vega_lite_chart")


def _chart(test, measure_key):
    return next(chart for chart in _charts(test) if chart.key == f"chart_{measure_key}")


def _click(test, measure_key, point: dict):
    """What the browser sends when a mark is clicked: the chart's selection as its widget state."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates

    chart = _chart(test, measure_key)
    states = WidgetStates()
    states.widgets.extend(state for state in test._tree.get_widget_states().widgets if state.id != chart.proto.id)
    clicked = states.widgets.add()
    clicked.id = chart.proto.id
    clicked.string_value = json.dumps({"selection": {"pick": [point]}})
    return test._run(widget_state=states)


def _list_views(engine) -> int:
    with db.reading(engine) as session:
        return len(session.exec(select(AuditEvent).where(AuditEvent.action == "view_caseload_list")).all())


def test_page_draws_every_chart_and_tile_for_a_team_lead(app_test, page_team):
    test = app_test(PAGE, page_team.staff.team_lead, query=PERIOD.to_query()).run()
    assert not test.exception, test.exception
    assert len(test.metric) == 9 + 1  # the headline tiles, and the out-of-hours share
    assert len(_charts(test)) == len(caseload.MEASURES) - 1  # every chart but the headline's tiles
    # the national return's data quality by month is counted when asked for (tests/test_national_return_pages.py)
    assert "Show data quality for the last 12 months" in [button.label for button in test.button]
    captions = " ".join(caption.value for caption in test.caption)
    for info in caseload.MEASURES.values():
        if info.key != "headline":
            assert info.definition in captions, info.key
    assert not test.dataframe  # no list (and so no client's name) until a mark is clicked
    assert not test.warning  # the link's own filters are all usable


def test_chart_specs_on_the_page_hold_no_client_name(app_test, page_team):
    test = app_test(PAGE, page_team.staff.team_lead, query=PERIOD.to_query()).run()
    for chart in _charts(test):
        spec = chart.proto.spec + json.dumps([str(dataset) for dataset in chart.proto.datasets])
        for name in CLIENT_NAMES:
            assert name not in spec
        assert "R-TEST" not in spec


def test_clicking_a_bar_lists_exactly_its_requests_and_audits_it_once(app_test, sqlite_engine, page_team):
    test = app_test(PAGE, page_team.staff.team_lead, query=PERIOD.to_query()).run()
    site_a = page_team.staff.sites[0].id
    _click(test, "requests_by_week_and_site", {"week": "2025-03-24", "site_id": site_a})
    assert not test.exception, test.exception
    assert len(test.dataframe) == 1
    listed = test.dataframe[0].value
    assert sorted(listed["Reference"]) == ["R-TEST-R1", "R-TEST-R3"]
    assert set(listed["Person"]) == {"Zebedee Quimby", "Wilhelmina Vortigern"}
    assert listed["Received"].iloc[0] == "30/03/2025 23:30"  # London time
    assert _list_views(sqlite_engine) == 1
    test.run()  # an unrelated rerun shows the same list without a second audit row
    assert len(test.dataframe) == 1 and _list_views(sqlite_engine) == 1
    _click(test, "cover_by_hour_and_day", {"weekday": 1, "hour": 0})
    assert sorted(test.dataframe[0].value["Reference"]) == ["R-TEST-R2", "R-TEST-R4"]
    assert _list_views(sqlite_engine) == 2


def test_the_filters_come_from_and_go_to_the_url(app_test, page_team):
    site_b = page_team.staff.sites[1].id
    test = app_test(PAGE, page_team.staff.team_lead, query={**PERIOD.to_query(), "site": str(site_b)}).run()
    assert not test.exception
    tiles = {metric.label: metric.value for metric in test.metric}
    assert tiles["Requests received"] == "2"  # R2 and R4
    test.selectbox(key="caseload_urgency").set_value("routine").run()
    assert test.query_params["urgency"] == ["routine"] or test.query_params["urgency"] == "routine"
    assert {metric.label: metric.value for metric in test.metric}["Requests received"] == "1"  # R4


def test_a_link_with_a_site_of_another_team_is_ignored_with_a_message(app_test, page_team):
    other_site = page_team.staff.sites[2].id
    test = app_test(PAGE, page_team.staff.team_lead, query={**PERIOD.to_query(), "site": str(other_site)}).run()
    assert not test.exception
    assert any("not a value you can choose" in warning.value for warning in test.warning)
    assert {metric.label: metric.value for metric in test.metric}["Requests received"] == "6"


def test_a_practitioner_is_refused_the_page(app_test, sqlite_engine, page_team):
    test = app_test(PAGE, page_team.staff.practitioner, query=PERIOD.to_query()).run()
    assert not test.exception
    assert any("do not have permission" in error.value for error in test.error)
    assert not _charts(test) and not test.metric and not test.dataframe


def test_an_empty_period_draws_without_errors(app_test, page_team):
    test = app_test(PAGE, page_team.staff.team_lead, query={"from": "2020-01-06", "to": "2020-01-12"}).run()
    assert not test.exception
    assert {metric.label: metric.value for metric in test.metric}["Requests received"] == "0"
    assert len(test.get("vega_lite_chart")) == 1  # only the open caseload, which is of now


# ------------------------------------------------------------------------------------------------
# In real Chromium: a click on a bar sends the selection the page expects


@pytest.mark.browser
def test_clicking_a_bar_in_chromium_lists_its_requests(live_app, page):  # noqa: F811
    staff = live_app.staff
    received = clock.now() - timedelta(days=1)
    with db.writing(live_app.engine) as session:
        person = Person(team_id=staff.team.id, given_name="Zebedee", family_name="Quimby",
                        nhs_number_status="not_known", given_name_key="zebedee", family_name_key="quimby")
        session.add(person)
        session.flush()
        for number in range(3):
            at = received - timedelta(hours=number)
            session.add(Request(reference=f"R-LIVE-{number}", team_id=staff.team.id, site_id=staff.sites[0].id,
                                received_at=at, source_of_referral="police", requester_name="PC", urgency="urgent",
                                request_type="screening", reason="x", status="new", due_at=at + timedelta(hours=4),
                                person_id=person.id, created_by_id=staff.practitioner.id))
    sign_in(page, live_app, "lead")
    page.get_by_role("link", name="Caseload").click()
    heading = page.get_by_role("heading", name=caseload.MEASURES["pathway_funnel"].title)
    heading.wait_for()
    panel = page.locator('[data-testid="stVerticalBlock"]', has=heading).last
    chart = panel.locator('[data-testid="stVegaLiteChart"]').first
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)  # Vega draws after the element appears
    assert page.get_by_text("Zebedee").count() == 0  # no name anywhere until a mark is clicked
    box = chart.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + 12)  # the "Requests received" bar, top row
    panel.get_by_text("Requests behind the selection: 3").wait_for()
    # The grid itself is drawn on a canvas; the audit row says which list was opened.
    with db.reading(live_app.engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "view_caseload_list")).one()
    assert event.user_id == staff.team_lead.id
    assert "stage=received" in event.detail and "3 rows" in event.detail


def test_all_measures_sharing_one_pass_equal_each_measure_alone(engine, team):
    lead = team.staff.team_lead
    with db.reading(engine) as session:
        together = caseload.all_measures(session, lead, PERIOD)
    for key, info in caseload.MEASURES.items():
        alone = measure(engine, lead, info.function)
        pd.testing.assert_frame_equal(together[key], alone, obj=key)


def test_every_chart_is_valid_vega_lite_with_its_click_fields(engine, team):
    """The page skips Altair's validation for speed; this is where every chart is validated."""
    from ui import charts

    with db.reading(engine) as session:
        results = caseload.all_measures(session, team.staff.team_lead, PERIOD)
    for key in caseload.CHART_MEASURES:
        spec = charts.build(key, results[key], PERIOD)
        assert spec.chart is not None, key
        spec.chart.to_dict()  # raises on a schema error
        vega = charts.vega_lite(spec.chart)
        assert "continuousWidth" not in json.dumps(vega.get("config", {}))
        if caseload.MEASURES[key].drilldown:
            assert spec.fields and vega["params"][0]["name"] == charts.SELECTION, key
            data = vega.get("data") or vega["layer"][0]["data"]
            rows = data["values"] if "values" in data else vega["datasets"][data["name"]]
            assert all(field in rows[0] for field in spec.fields), key
        else:
            assert not spec.fields


def test_the_cache_stamp_moves_with_changes_not_with_views(engine, team):
    from services import audit

    def stamp():
        with db.reading(engine) as session:
            return caseload.data_stamp(session, team.staff.team_lead)

    before = stamp()
    with db.writing(engine) as session:
        audit.record(session, team.staff.practitioner, "view_request", entity="request", entity_id=1)
        audit.record(session, team.staff.practitioner, "sign_in", entity="user", entity_id=1)
    assert stamp() == before
    with db.writing(engine) as session:
        audit.record(session, team.staff.practitioner, "log_request", entity="request", entity_id=1)
    assert stamp() != before


def test_the_cache_stamp_moves_when_an_older_change_commits_after_a_newer_one(engine, team):
    """PostgreSQL gives a row its id when it is written, not when it commits: with several app
    processes saving at once, the newest id can be on the page before an older one commits."""
    from services import audit

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes one transaction at a time, so ids commit in their order")

    def stamp():
        with db.reading(engine) as session:
            return caseload.data_stamp(session, team.staff.team_lead)

    with db.writing(engine) as slow:
        audit.record(slow, team.staff.practitioner, "log_request", entity="request", entity_id=1)
        slow.flush()  # the lower id is taken now; the commit comes last
        with db.writing(engine) as quick:
            audit.record(quick, team.staff.second_practitioner, "log_request", entity="request", entity_id=2)
        before = stamp()  # what a page keyed its cache by meanwhile
    assert stamp() != before
