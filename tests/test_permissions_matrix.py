"""The permissions matrix: role × action × own team / other team, every deny a deny on the server, and logged.

`ACTIONS` is the table: one row per call of a public service function that reads or writes client
data or the service's set-up — requests, people, screening, referrals, the person's record,
activities, caseload, export, the audit log, administration, accounts, retention and the home
page — as (the function, the permissions it needs, whether it acts on one record of a team).
What each role may do is not written here: it is read from `services.permissions.ROLE_PERMISSIONS`.

For each row, each role (practitioner, team lead, administrator) and each team, the function is
called through a real `db.writing` transaction with records made fresh for the cell:

- role without the permission: `PermissionDenied`, and one new *denied* AuditEvent for that user
  (written by `services.db` after the refused transaction rolled back) — except two functions that
  answer with nothing instead (see the NOTE under the table);
- role with the permission, own team: it works (no exception);
- role with the permission, a record of another team: refused the same way, the audit row naming
  the record — except for the administrators' service-wide functions (sites, codes, settings,
  accounts, retention, the audit log), which span teams by design;
- role with the permission, no single record (lists, searches, charts, exports): it works, and no
  other team's client appears anywhere in what comes back (another team's records, with a marked
  family name, are in the database throughout).

`test_every_public_function_is_in_the_matrix` keeps the table whole: every public function of
`services/` taking the acting user is in it, or is listed in `NOT_IN_THE_MATRIX` with the reason.
"""

import inspect
import itertools
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from importlib import import_module
from io import BytesIO
from typing import Any

import pytest
from sqlmodel import func, select

import services
from models import (
    Activity,
    AuditEvent,
    CodeItem,
    OnwardReferral,
    Person,
    Request,
    Screening,
    Setting,
    Site,
    Team,
    User,
)
from models.codes import CodeList, RequestStatus, Role, ScreeningStatus, SiteKind
from services import (
    accounts,
    activities,
    administration,
    audit_log,
    caseload,
    clock,
    db,
    export,
    export_lists,
    home,
    national_return,
    organisation,
    people,
    person_record,
    referrals,
    requests,
    retention,
    screening,
)
from services.errors import PermissionDenied
from services.matching import name_key
from services.permissions import ROLE_PERMISSIONS, Permission, has_permission

P = Permission
ROLES = (Role.PRACTITIONER, Role.TEAM_LEAD, Role.ADMINISTRATOR)
OWN, OTHER = "own team", "other team"
TEAM, ORGANISATION = "team", "organisation"
OWN_MARK, OTHER_MARK = "Owntown", "Othertown"  # family names of each side's people
_serial = itertools.count(1)


def needs(*groups) -> tuple[frozenset[Permission], ...]:
    """All of the groups, each a permission or a tuple of permissions any one of which will do."""
    return tuple(frozenset(group if isinstance(group, tuple) else (group,)) for group in groups)


def role_may(role: Role, required: tuple[frozenset[Permission], ...]) -> bool:
    return all(group & ROLE_PERMISSIONS[role] for group in required)


# --- the records each cell works on ---------------------------------------------------------


def london_minute(moment: datetime) -> tuple[date, Any]:
    local = clock.to_london(moment)
    return local.date(), local.time().replace(second=0, microsecond=0)


class Records:
    """Fresh records of one team, made (each in its own transaction) only when a cell asks for them."""

    def __init__(self, engine, staff, side: str):
        self.engine = engine
        self.staff = staff
        own = side == OWN
        self.team = staff.team if own else staff.other_team
        self.other_team = staff.other_team if own else staff.team
        self.practitioner = staff.practitioner if own else staff.other_team_practitioner
        self.lead = staff.team_lead if own else staff.other_team_lead
        self.colleague = staff.second_practitioner if own else staff.other_team_practitioner
        self.site = staff.sites[0] if own else staff.sites[2]
        self.mark = OWN_MARK if own else OTHER_MARK

    def _add(self, row):
        with db.writing(self.engine) as session:
            session.add(row)
            session.flush()
            return row

    def family_name(self) -> str:
        return f"{self.mark}-{next(_serial)}"

    @cached_property
    def person(self) -> Person:
        return self.new_person()

    def new_person(self, born: date = date(1990, 5, 11), last_contact_on: date | None = None) -> Person:
        family = self.family_name()
        return self._add(Person(team_id=self.team.id, given_name="Siôn", family_name=family, date_of_birth=born,
                                nhs_number_status="not_known", given_name_key=name_key("Siôn"),
                                family_name_key=name_key(family), last_contact_on=last_contact_on))

    def new_request(self, status: str = RequestStatus.NEW, **values) -> Request:
        received = clock.now() - timedelta(hours=3)
        request = Request(
            team_id=self.team.id, site_id=self.site.id, person_id=self.new_person().id, received_at=received,
            source_of_referral="police", requester_name="PC Dawn Jones", request_type="screening",
            urgency="urgent", reason="Seems confused", status=status, due_at=received + timedelta(hours=4),
            created_by_id=self.practitioner.id, updated_by_id=self.practitioner.id, **values)
        request = self._add(request)
        with db.writing(self.engine) as session:
            stored = session.get(Request, request.id)
            stored.reference = f"T-{stored.id:06d}"
            session.flush()
            return stored

    @cached_property
    def request(self) -> Request:
        return self.new_request()

    @cached_property
    def allocated_request(self) -> Request:
        return self.new_request(RequestStatus.ALLOCATED, allocated_to_id=self.practitioner.id,
                                allocated_at=clock.now())

    @cached_property
    def in_progress_request(self) -> Request:
        return self.new_request(RequestStatus.IN_PROGRESS, allocated_to_id=self.practitioner.id,
                                allocated_at=clock.now(), first_response_at=clock.now() - timedelta(hours=1),
                                first_response_mechanism="02", first_response_summary="Advised.")

    @cached_property
    def closed_request(self) -> Request:
        return self.new_request(RequestStatus.CLOSED, allocated_to_id=self.practitioner.id,
                                first_response_at=clock.now() - timedelta(hours=1), closed_at=clock.now(),
                                closure_reason="advice_given")

    def new_screening(self, **values) -> Screening:
        request = self.new_request()
        values = {"sections_saved": []} | values
        return self._add(Screening(team_id=self.team.id, person_id=request.person_id, request_id=request.id,
                                   practitioner_id=self.practitioner.id, site_id=self.site.id,
                                   status=ScreeningStatus.DRAFT, updated_by_id=self.practitioner.id, **values))

    @cached_property
    def draft(self) -> Screening:
        return self.new_screening()

    @cached_property
    def ready_screening(self) -> Screening:
        """A draft that passes every completion check."""
        return self.new_screening(
            screened_at=clock.now() - timedelta(hours=1), contact_mechanism="01", consent_to_screening="given",
            consent_to_share="given", learning_disability_status="5", autism_status="5", risk_to_self="low",
            risk_to_others="none", risk_from_others="low", outcome="further_assessment",
            sections_saved=list(screening.REQUIRED_SECTIONS))

    @cached_property
    def referral(self) -> OnwardReferral:
        draft = self.new_screening()
        return self._add(OnwardReferral(team_id=self.team.id, person_id=draft.person_id, screening_id=draft.id,
                                        service="crisis_team", referred_on=clock.today_in_london(), status="made",
                                        updated_by_id=self.practitioner.id))

    @cached_property
    def activity(self) -> Activity:
        with db.writing(self.engine) as session:
            return activities.log_activity(session, self.practitioner, mappa())

    @cached_property
    def spare_site(self) -> Site:
        return self._add(Site(team_id=self.team.id, name=f"Spare site {next(_serial)}", kind=SiteKind.CUSTODY_SUITE))

    @cached_property
    def spare_user(self) -> User:
        serial = next(_serial)
        return self._add(User(username=f"spare{serial}", full_name=f"Spare Person {serial}",
                              role=Role.PRACTITIONER, team_id=self.team.id))

    @cached_property
    def spare_team(self) -> Team:
        return self._add(Team(name=f"Spare team {next(_serial)}"))

    @cached_property
    def code_item(self) -> CodeItem:
        serial = next(_serial)
        return self._add(CodeItem(list_name=CodeList.VULNERABILITY.value, code=f"spare_{serial}",
                                  label=f"Spare vulnerability {serial}", sort_order=900 + serial))

    @cached_property
    def past_retention(self) -> Person:
        return self.new_person(born=date(1950, 1, 1), last_contact_on=date(1990, 1, 1))

    def setting_versions(self) -> dict[str, int | None]:
        with db.reading(self.engine) as session:
            return {row.key: row.version for row in session.exec(select(Setting)).all()}

    def column_set_id_of(self, user: User) -> int:
        """An id of the user's own saved column set (a user who may not export has none: any id will do)."""
        if not has_permission(user, P.EXPORT):
            return 10**9
        with db.writing(self.engine) as session:
            return export.save_column_set(session, user, "triage_queue", f"Set {next(_serial)}", ["reference"]).id


def mappa(minutes: int = 90) -> activities.MappaMeetingInput:
    return activities.MappaMeetingInput(activity_on=clock.today_in_london() - timedelta(days=7), mappa_category=2,
                                        mappa_level=3, agencies_present="Police, probation",
                                        contribution="History summarised", minutes_spent=minutes)


def new_person_input(r: Records) -> people.NewPerson:
    return people.NewPerson(given_name="Aoife", family_name=r.family_name(), date_of_birth=date(1985, 2, 3))


def new_request_input(r: Records) -> requests.NewRequest:
    on, at = london_minute(clock.now() - timedelta(minutes=10))
    return requests.NewRequest(
        received_on=on, received_time=at, source_of_referral="police", requester_name="PC Dawn Jones",
        requester_phone="01702 123456", site_id=r.site.id, request_type="screening", urgency="urgent",
        reason="Seems confused", new_person=new_person_input(r), confirm_new_person=True)


def first_response() -> requests.FirstResponse:
    on, at = london_minute(clock.now() - timedelta(minutes=1))
    return requests.FirstResponse(on, at, "02", "Advised custody staff.")


def context(r: Records) -> screening.PersonAndContext:
    on, at = london_minute(clock.now() - timedelta(hours=1))
    return screening.PersonAndContext(site_id=r.site.id, screened_on=on, screened_time=at, contact_mechanism="01")


PHQ9 = {f"item{number}": 1 for number in range(1, 6)} | {f"item{number}": 0 for number in range(6, 10)}
DRILL = caseload.Selection.of("pathway_funnel", {"stage": "received"})


def list_named(name: str) -> Callable[[Records, User], tuple]:
    return lambda r, u: (name,)


def rows(session, statement) -> list:
    return session.execute(statement.limit(100)).all()


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    function: Callable
    required: tuple[frozenset[Permission], ...]
    needs_record: bool
    args: Callable[[Records, User], tuple] = lambda r, u: ()
    kwargs: Callable[[Records, User], dict] = lambda r, u: {}
    scope: str = TEAM
    session: bool = True  # the function takes the session first
    then: Callable[[Any, Any], Any] | None = None  # run a returned query, in the same session
    label: str = ""
    quiet: bool = False  # without the permission it returns nothing instead of refusing (see NOTE)

    @property
    def name(self) -> str:
        base = f"{self.function.__module__.removeprefix('services.')}.{self.function.__name__}"
        return f"{base}({self.label})" if self.label else base

    def run(self, session, user: User, records: Records):
        args, kwargs = self.args(records, user), self.kwargs(records, user)
        result = self.function(session, user, *args, **kwargs) if self.session else self.function(user, *args,
                                                                                                   **kwargs)
        return self.then(session, result) if self.then else result

    def prepare(self, records: Records, user: User) -> None:
        """Make the records the call needs before its own transaction starts (SQLite has one writer)."""
        self.args(records, user)
        self.kwargs(records, user)


A = Action


def this_month() -> national_return.ReturnMonth:
    return national_return.ReturnMonth.recent(1)[0]
R = True  # acts on one record of a team
CASELOAD_FILTERS = lambda r, u: (caseload.CaseloadFilters.default(),)  # noqa: E731
CASELOAD_MEASURES = (
    caseload.filter_choices, caseload.headline, caseload.requests_by_week_and_site,
    caseload.requests_by_week_and_source, caseload.time_to_first_screening,
    caseload.screening_within_target_by_week, caseload.answered_in_time_by_urgency,
    caseload.open_caseload_by_practitioner, caseload.vulnerabilities, caseload.age_band_and_gender,
    caseload.ethnic_category, caseload.pathway_funnel, caseload.onward_referrals, caseload.cover_by_hour_and_day,
    caseload.out_of_hours, caseload.activities_by_month, caseload.all_measures,
)

ACTIONS: list[Action] = [
    # Requests
    A(requests.log_request, needs(P.LOG_REQUEST), False, lambda r, u: (new_request_input(r),)),
    A(requests.allocate, needs(P.ALLOCATE_REQUESTS), R,
      lambda r, u: (r.request.id, r.request.version, r.colleague.id)),
    A(requests.allocate_to_me, needs(P.ALLOCATE_TO_SELF), R, lambda r, u: (r.request.id, r.request.version)),
    A(requests.reallocate_open_requests, needs(P.ALLOCATE_REQUESTS), False,
      lambda r, u: (r.practitioner.id, [r.colleague.id])),
    A(requests.plan_reallocation, needs(P.ALLOCATE_REQUESTS), False,
      lambda r, u: (r.practitioner.id, [r.colleague.id])),
    A(requests.record_first_response, needs(P.RESPOND_TO_REQUEST), R,
      lambda r, u: (r.request.id, r.request.version, first_response())),
    A(requests.start_work, needs(P.RESPOND_TO_REQUEST), R,
      lambda r, u: (r.allocated_request.id, r.allocated_request.version)),
    A(requests.close_request, needs(P.RESPOND_TO_REQUEST), R,
      lambda r, u: (r.in_progress_request.id, r.in_progress_request.version, "advice_given")),
    A(requests.reopen_request, needs(P.REOPEN_REQUEST), R,
      lambda r, u: (r.closed_request.id, r.closed_request.version, "Police asked again")),
    A(requests.request_list_query, needs((P.VIEW_REQUESTS, P.EXPORT)), False, lambda r, u: (requests.RequestFilters(),),
      session=False, then=lambda s, listing: rows(s, listing.statement)),
    A(requests.triage_page, needs((P.VIEW_REQUESTS, P.EXPORT)), False, lambda r, u: (requests.RequestFilters(),)),
    A(requests.count_requests, needs((P.VIEW_REQUESTS, P.EXPORT)), False, lambda r, u: (requests.RequestFilters(),)),
    A(requests.allocatable_staff, needs(P.VIEW_REQUESTS), False),
    A(requests.open_request, needs(P.VIEW_REQUESTS, P.VIEW_PEOPLE), R, lambda r, u: (r.request.id,)),
    # People
    A(people.search_people, needs(P.VIEW_PEOPLE), False, lambda r, u: (OTHER_MARK,)),
    A(people.find_likely_duplicates, needs(P.VIEW_PEOPLE), False, lambda r, u: ("Siôn", OTHER_MARK)),
    A(people.create_person, needs(P.EDIT_PEOPLE), False, lambda r, u: (new_person_input(r),),
      kwargs=lambda r, u: {"confirm_not_duplicate": True}),
    A(people.person_in_team, needs(P.VIEW_PEOPLE), R, lambda r, u: (r.person.id,)),
    A(people.view_person, needs(P.VIEW_PEOPLE), R, lambda r, u: (r.person.id,)),
    # Screening
    A(screening.start_from_request, needs(P.SCREEN), R, lambda r, u: (r.request.id,)),
    A(screening.start_for_person, needs(P.SCREEN), R, lambda r, u: (r.person.id,)),
    A(screening.start_for_new_person, needs(P.SCREEN, P.EDIT_PEOPLE), False, lambda r, u: (new_person_input(r),),
      kwargs=lambda r, u: {"confirm_not_duplicate": True}),
    A(screening.get_screening, needs(P.SCREEN), R, lambda r, u: (r.draft.id,)),
    A(screening.record_view, needs(P.SCREEN), R, lambda r, u: (r.draft.id,)),
    A(screening.save_person_and_context, needs(P.SCREEN), R, lambda r, u: (r.draft.id, r.draft.version, context(r))),
    A(screening.save_consent, needs(P.SCREEN), R,
      lambda r, u: (r.draft.id, r.draft.version, screening.Consent("given", "given"))),
    A(screening.save_vulnerabilities, needs(P.SCREEN), R,
      lambda r, u: (r.draft.id, r.draft.version, screening.Vulnerabilities(["mental_health"], "5", "5"))),
    A(screening.save_instruments, needs(P.SCREEN), R, lambda r, u: (r.draft.id, r.draft.version, screening.Instruments(
        scored={"phq9": screening.InstrumentAnswers(dict(PHQ9))}))),
    A(screening.save_risk, needs(P.SCREEN), R,
      lambda r, u: (r.draft.id, r.draft.version, screening.Risk("low", None, "none", None, "low", None))),
    A(screening.save_outcome, needs(P.SCREEN), R,
      lambda r, u: (r.draft.id, r.draft.version, screening.Outcome("further_assessment"))),
    A(screening.complete, needs(P.SCREEN), R, lambda r, u: (r.ready_screening.id, r.ready_screening.version)),
    A(screening.sharing_summary, needs(P.SCREEN), R, lambda r, u: (r.draft.id,)),
    A(screening.requests_awaiting_screening, needs(P.SCREEN), False),
    A(screening.screenings_query, needs((P.VIEW_PEOPLE, P.EXPORT)), False, session=False,
      then=lambda s, listing: rows(s, listing.statement)),
    A(screening.list_screenings, needs((P.VIEW_PEOPLE, P.EXPORT)), False),
    # Onward referrals
    A(referrals.add_referral, needs(P.REFER), R, lambda r, u: (r.draft.id, referrals.NewReferral(
        service="crisis_team", referred_on=clock.today_in_london()))),
    A(referrals.update_referral, needs(P.REFER), R,
      lambda r, u: (r.referral.id, r.referral.version, referrals.ReferralUpdate(status="accepted"))),
    A(referrals.remove_referral, needs(P.REFER), R, lambda r, u: (r.referral.id, r.referral.version)),
    A(referrals.referrals_for_screening, needs(P.SCREEN), R, lambda r, u: (r.draft.id,)),
    A(referrals.referrals_for_person, needs(P.VIEW_PEOPLE), R, lambda r, u: (r.person.id,)),
    # The person's record
    A(person_record.open_record, needs(P.VIEW_PEOPLE), R, lambda r, u: (r.person.id,)),
    A(person_record.score_history, needs(P.VIEW_PEOPLE), R, lambda r, u: (r.person.id,)),
    # Activities
    A(activities.log_activity, needs(P.LOG_ACTIVITY), False, lambda r, u: (mappa(),)),
    A(activities.update_activity, needs(P.LOG_ACTIVITY), R,
      lambda r, u: (r.activity.id, r.activity.version, mappa(minutes=45))),
    A(activities.get_activity, needs(P.VIEW_ACTIVITIES), R, lambda r, u: (r.activity.id,)),
    A(activities.open_activity, needs(P.VIEW_ACTIVITIES), R, lambda r, u: (r.activity.id,)),
    A(activities.find_people, needs(P.LOG_ACTIVITY), False, lambda r, u: (OTHER_MARK,)),
    A(activities.person_choice, needs(P.VIEW_ACTIVITIES), R, lambda r, u: (r.person.id,)),
    A(activities.prison_choices, needs(P.LOG_ACTIVITY), False),
    A(activities.service_choices, needs(P.LOG_ACTIVITY), False),
    A(activities.service_labels, needs(P.VIEW_ACTIVITIES), False),
    A(activities.team_practitioners, needs(P.VIEW_ACTIVITIES), False),
    A(activities.activity_list, needs(P.VIEW_ACTIVITIES), False, lambda r, u: ("mappa_meeting",), session=False,
      then=lambda s, listing: rows(s, listing.query)),
    A(activities.list_activities, needs(P.VIEW_ACTIVITIES), False, lambda r, u: ("mappa_meeting",)),
    A(activities.monthly_activity_counts, needs((P.VIEW_ACTIVITIES, P.VIEW_CASELOAD)), False,
      lambda r, u: (clock.today_in_london() - timedelta(days=90), clock.today_in_london())),
    # Caseload (team leads' charts: counts, no names) and its drill-down list (names)
    *(A(measure, needs(P.VIEW_CASELOAD), False,
        (lambda r, u: ()) if measure is caseload.filter_choices else CASELOAD_FILTERS)
      for measure in CASELOAD_MEASURES),
    A(caseload.drilldown_query, needs(P.VIEW_CASELOAD), False,
      lambda r, u: (caseload.CaseloadFilters.default(), DRILL), then=lambda s, found: rows(s, found[0])),
    A(caseload.drilldown_rows, needs(P.VIEW_CASELOAD), False, lambda r, u: (caseload.CaseloadFilters.default(), DRILL)),
    A(caseload.data_stamp, needs(P.VIEW_CASELOAD), False),
    # Export: every list the Export page offers, with its own permission as well as export's
    *(A(function, needs(P.EXPORT, exportable.permission), False, list_named(name),
        kwargs=(lambda r, u: {"target": BytesIO()}) if function is export.export_list else (lambda r, u: {}),
        label=name)
      for name, exportable in export_lists.LISTS.items()
      for function in (export.export_list, export.count_rows, export.preview_rows)),
    A(export.column_sets, needs(P.EXPORT, (P.VIEW_REQUESTS, P.EXPORT)), False, lambda r, u: ("triage_queue",)),
    A(export.save_column_set, needs(P.EXPORT, (P.VIEW_REQUESTS, P.EXPORT)), False,
      lambda r, u: ("triage_queue", f"Mine {next(_serial)}", ["reference", "given_name"])),
    A(export.delete_column_set, needs(P.EXPORT), False,
      lambda r, u: (r.column_set_id_of(u),)),
    A(export.kpi_workbook, needs(P.EXPORT, P.VIEW_CASELOAD), False,
      lambda r, u: (export.month_period(clock.today_in_london().year, clock.today_in_london().month),),
      kwargs=lambda r, u: {"target": BytesIO()}),
    A(export.exportable_lists, needs(P.EXPORT), False, session=False, quiet=True),
    # National return: this month's, so the team's own records are in it
    A(national_return.build_return, needs(P.EXPORT, P.VIEW_CASELOAD), False, lambda r, u: (this_month(),)),
    *(A(function, needs(P.EXPORT, P.VIEW_CASELOAD), False, lambda r, u: (this_month(),),
        kwargs=lambda r, u: {"target": BytesIO()})
      for function in (national_return.write_workbook, national_return.write_csv_zip)),
    A(national_return.quality_report, needs(P.VIEW_CASELOAD), False, lambda r, u: (this_month(),)),
    A(national_return.quality_by_month, needs(P.VIEW_CASELOAD), False),
    A(national_return.chart_rows, needs(P.VIEW_CASELOAD), False, lambda r, u: (this_month(),)),
    A(national_return.records_to_fix, needs(P.VIEW_CASELOAD), False, lambda r, u: (this_month(), "nhs_number")),
    # Audit log
    A(audit_log.list_query, needs(P.VIEW_AUDIT), False, lambda r, u: (audit_log.AuditFilters(),), session=False,
      then=lambda s, query: rows(s, query.statement), scope=ORGANISATION),
    A(audit_log.search, needs(P.VIEW_AUDIT), False, lambda r, u: (audit_log.AuditFilters(),), scope=ORGANISATION),
    A(audit_log.user_choices, needs(P.VIEW_AUDIT), False, scope=ORGANISATION),
    # Administration (service-wide: an administrator looks after every team)
    A(administration.list_teams, needs(P.MANAGE_SERVICE), False, scope=ORGANISATION),
    A(administration.add_team, needs(P.MANAGE_SERVICE), False, lambda r, u: (f"New team {next(_serial)}",),
      scope=ORGANISATION),
    A(administration.rename_team, needs(P.MANAGE_SERVICE), R,
      lambda r, u: (r.spare_team.id, r.spare_team.version, f"Renamed team {next(_serial)}"), scope=ORGANISATION),
    A(administration.move_user, needs(P.MANAGE_SERVICE), R,
      lambda r, u: (r.spare_user.id, r.spare_user.version, r.other_team.id), scope=ORGANISATION),
    A(administration.list_sites, needs(P.MANAGE_SERVICE), R, lambda r, u: (r.team.id,), scope=ORGANISATION),
    A(administration.add_site, needs(P.MANAGE_SERVICE), R,
      lambda r, u: (r.team.id, f"Added site {next(_serial)}", SiteKind.CUSTODY_SUITE), scope=ORGANISATION),
    A(administration.change_site, needs(P.MANAGE_SERVICE), R,
      lambda r, u: (r.spare_site.id, r.spare_site.version, f"Changed site {next(_serial)}", SiteKind.CUSTODY_SUITE),
      scope=ORGANISATION),
    A(administration.set_site_active, needs(P.MANAGE_SERVICE), R,
      lambda r, u: (r.spare_site.id, r.spare_site.version, False), scope=ORGANISATION),
    A(administration.delete_site, needs(P.MANAGE_SERVICE), R, lambda r, u: (r.spare_site.id, r.spare_site.version),
      scope=ORGANISATION),
    A(administration.list_codes, needs(P.MANAGE_SERVICE), False, lambda r, u: (CodeList.VULNERABILITY,),
      scope=ORGANISATION),
    A(administration.add_code, needs(P.MANAGE_SERVICE), False,
      lambda r, u: (CodeList.VULNERABILITY, f"Added vulnerability {next(_serial)}"), scope=ORGANISATION),
    A(administration.rename_code, needs(P.MANAGE_SERVICE), False,
      lambda r, u: (r.code_item.id, r.code_item.version, f"Renamed vulnerability {next(_serial)}"),
      scope=ORGANISATION),
    A(administration.set_national_code, needs(P.MANAGE_SERVICE), False,
      lambda r, u: (r.code_item.id, r.code_item.version, None), scope=ORGANISATION),
    A(administration.move_code, needs(P.MANAGE_SERVICE), False,
      lambda r, u: (r.code_item.id, r.code_item.version, -1), scope=ORGANISATION),
    A(administration.set_code_active, needs(P.MANAGE_SERVICE), False,
      lambda r, u: (r.code_item.id, r.code_item.version, False), scope=ORGANISATION),
    A(administration.list_settings, needs(P.MANAGE_SERVICE), False, scope=ORGANISATION),
    A(administration.change_settings, needs(P.MANAGE_SERVICE), False,
      lambda r, u: ({"amber_percent": 50 + next(_serial) % 40}, r.setting_versions()), scope=ORGANISATION),
    A(administration.active_staff, needs(P.MANAGE_SERVICE), False, scope=ORGANISATION),
    # Accounts
    A(accounts.create_user, needs(P.MANAGE_USERS), False, lambda r, u: (accounts.NewUser(
        username=f"new{next(_serial)}", full_name="New Starter", role=Role.PRACTITIONER, team_id=r.team.id,
        temporary_password="", email=f"new{next(_serial)}@nhs.example"),), scope=ORGANISATION),
    A(accounts.set_active, needs(P.MANAGE_USERS), R, lambda r, u: (r.spare_user.id, False), scope=ORGANISATION),
    A(accounts.change_role, needs(P.MANAGE_USERS), R, lambda r, u: (r.spare_user.id, Role.TEAM_LEAD),
      scope=ORGANISATION),
    A(accounts.reset_password, needs(P.MANAGE_USERS), R,
      lambda r, u: (r.spare_user.id, "a temporary password nobody guesses"), scope=ORGANISATION),
    A(accounts.list_users, needs(P.MANAGE_USERS), False, scope=ORGANISATION),
    A(accounts.team_members, needs(P.VIEW_REQUESTS), False),
    A(accounts.rename_user, needs(P.MANAGE_USERS), R,
      lambda r, u: (r.spare_user.id, "Renamed Person", f"renamed{next(_serial)}"), scope=ORGANISATION),
    A(accounts.set_export_permission, needs(P.MANAGE_USERS), R, lambda r, u: (r.spare_user.id, True),
      scope=ORGANISATION),
    # Retention (service-wide: the organisation's policy, reviewed by an administrator)
    A(retention.review_queue, needs(P.REVIEW_RETENTION), False, scope=ORGANISATION),
    A(retention.delete_past_retention, needs(P.REVIEW_RETENTION), R, lambda r, u: ([r.past_retention.id],),
      scope=ORGANISATION),
    # Home page and the forms' choices
    A(home.my_open_requests, needs(P.VIEW_REQUESTS), False),
    A(home.my_draft_screenings, needs(P.SCREEN), False),
    A(home.team_counts, needs(P.ALLOCATE_REQUESTS), False, quiet=True),
    A(organisation.list_teams, needs(P.VIEW_HOME), False),
    A(organisation.active_sites, needs(P.VIEW_HOME), False),
]
# NOTE on `quiet`: two functions answer a user without the permission with nothing rather than a
# refusal, because a page shows their answer as an optional part of itself: the home page's team
# counts (None) and the Export page's list of lists (empty). Neither returns client data.

NOT_IN_THE_MATRIX = {
    "export.audit_export": "writes the audit row of an export whose own function checked permission first",
    "accounts.change_own_password": "changes the signed-in user's own password only (tests/test_accounts.py)",
    "audit.record": "writes the audit row for the operation that calls it; not an operation itself",
    "export_lists.describe_filters": "called by export_list only, after its permission check, for the About sheet",
    "locking.touch": "stamps a row being saved by an operation that has checked permission already",
    "permissions.has_permission": "the check itself",
    "permissions.require": "the check itself",
    "permissions.require_team": "the check itself",
    "permissions.require_team_record": "the check itself",
    "submissions.claim": "claims the submission token of the create that calls it, after that create's own check",
    "form_drafts.keep": "a person's own unsaved typing, under their own id: there is no one else's to reach",
    "form_drafts.recall": "a person's own unsaved typing, under their own id: there is no one else's to reach",
    "form_drafts.discard": "a person's own unsaved typing, under their own id: there is no one else's to reach",
}


# --- running the matrix -----------------------------------------------------------------------------


@dataclass
class Cell:
    action: Action
    role: Role
    side: str
    expected: str
    outcome: str = ""
    problem: str = ""


@dataclass
class Matrix:
    cells: list[Cell] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [f"{cell.action.name} as {cell.role} on {cell.side}: expected {cell.expected}, {cell.problem}"
                for cell in self.cells if cell.problem]


ALLOWED, REFUSED, NOTHING = "allowed", "refused", "nothing"


def expected(action: Action, role: Role, side: str) -> str:
    if not role_may(role, action.required):
        return NOTHING if action.quiet else REFUSED
    if side == OTHER and action.needs_record and action.scope == TEAM:
        return REFUSED
    return ALLOWED


def denied_rows(engine, user: User) -> list[AuditEvent]:
    with db.reading(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.user_id == user.id,
                                                          AuditEvent.outcome == "denied")
                                 .order_by(AuditEvent.id)).all())


def user_may(user: User, required: tuple[frozenset[Permission], ...]) -> bool:
    """As `role_may`, for one account: its own grant or withdrawal of export counts (User.can_export)."""
    return all(any(has_permission(user, permission) for permission in group) for group in required)


def run_cell(engine, staff, action: Action, role: Role, side: str, user: User | None = None) -> Cell:
    """One cell; `user` is an account of `role` whose own permissions decide (default: the role's)."""
    if user is None:
        user, outcome = staff.by_role(role), expected(action, role, side)
    else:
        outcome = ALLOWED if user_may(user, action.required) else NOTHING if action.quiet else REFUSED
    cell = Cell(action, role, side, outcome)
    # A function acting on no single record is always called about the user's own team; its other
    # team column asks whether anything of another team's comes back.
    records = Records(engine, staff, side if action.needs_record else OWN)
    try:
        action.prepare(records, user)
    except Exception as error:  # the cell's set-up, not the function under test
        cell.problem = f"could not set up the records: {type(error).__name__}: {error}"
        return cell
    denied_before = len(denied_rows(engine, user))
    result, error = None, None
    try:
        with db.writing(engine) as session:
            result = action.run(session, user, records)
            shown = repr(result)  # inside the session: everything the caller could read
    except Exception as raised:
        error = raised
    denied = denied_rows(engine, user)[denied_before:]
    if cell.expected == ALLOWED:
        cell.outcome = ALLOWED if error is None else type(error).__name__
        if error is not None:
            cell.problem = f"got {type(error).__name__}: {error}"
        elif denied:
            cell.problem = "a denied audit row was written for an allowed call"
        elif OTHER_MARK in shown:
            cell.problem = "another team's client came back in the answer"
    elif cell.expected == NOTHING:
        cell.outcome = NOTHING if error is None and not result else repr(error or result)[:80]
        if cell.outcome != NOTHING:
            cell.problem = f"got {cell.outcome}"
    else:
        cell.outcome = type(error).__name__ if error else ALLOWED
        if not isinstance(error, PermissionDenied):
            cell.problem = f"got {cell.outcome}: {error or repr(result)[:120]}"
        elif len(denied) != 1:
            cell.problem = f"{len(denied)} denied audit rows were written, not 1"
        elif side == OTHER and role_may(role, action.required) and (denied[0].entity_id is None
                                                                    or denied[0].entity is None):
            cell.problem = f"the denied audit row does not name the record: {denied[0].action} {denied[0].entity}"
    return cell


def test_the_matrix_of_roles_actions_and_teams(engine, staff):
    # Another team's records, with a marked family name, are in the database throughout.
    theirs = Records(engine, staff, OTHER)
    for name in ("request", "draft", "referral", "activity", "ready_screening", "closed_request"):
        getattr(theirs, name)
    matrix = Matrix([run_cell(engine, staff, action, role, side)
                     for action in ACTIONS for role in ROLES for side in (OWN, OTHER)])
    counts = {outcome: sum(cell.expected == outcome for cell in matrix.cells) for outcome in (ALLOWED, REFUSED,
                                                                                               NOTHING)}
    functions = {action.function for action in ACTIONS}
    print(f"\n{engine.dialect.name}: {len(ACTIONS)} actions ({len(functions)} functions) × {len(ROLES)} roles × 2 "
          f"teams = {len(matrix.cells)} cells: {counts[ALLOWED]} allowed, {counts[REFUSED]} refused and audited, "
          f"{counts[NOTHING]} answered with nothing")
    problems = matrix.problems()
    assert not problems, f"{len(problems)} cells wrong:\n" + "\n".join(problems)


EXPORT_ACTIONS = [action for action in ACTIONS if any(P.EXPORT in group for group in action.required)
                  and not all(group & ROLE_PERMISSIONS[Role.PRACTITIONER] for group in action.required)]


def test_export_is_its_own_permission_off_for_administrators_until_granted(engine, staff):
    """Export is not in the administrator's role; an administrator grants it, or withdraws it, per person.

    Every export action of the table, for: administrators and practitioners as their role has it
    (refused, audited) and with export granted (allowed for each list they may see); a team lead
    with it withdrawn (refused, audited).
    """
    assert P.EXPORT not in ROLE_PERMISSIONS[Role.ADMINISTRATOR]
    assert P.EXPORT not in ROLE_PERMISSIONS[Role.PRACTITIONER] and P.EXPORT in ROLE_PERMISSIONS[Role.TEAM_LEAD]
    assert Records(engine, staff, OTHER).request  # another team's client is in the database throughout
    cells = []
    for granted in (None, True, False):
        with db.writing(engine) as session:
            for account in (staff.administrator, staff.practitioner, staff.team_lead):
                session.get(User, account.id).can_export = granted
                account.can_export = granted
        for role in ROLES:
            cells += [run_cell(engine, staff, action, role, OWN, user=staff.by_role(role))
                      for action in EXPORT_ACTIONS]
    matrix = Matrix(cells)
    assert not matrix.problems(), "\n".join(matrix.problems())
    outcomes = {(cell.role, cell.action.name): [] for cell in cells}
    for cell in cells:
        outcomes[cell.role, cell.action.name].append(cell.expected)
    screenings = "export.export_list(screenings)"
    assert outcomes[Role.ADMINISTRATOR, screenings] == [REFUSED, ALLOWED, REFUSED]
    assert outcomes[Role.PRACTITIONER, screenings] == [REFUSED, ALLOWED, REFUSED]
    assert outcomes[Role.TEAM_LEAD, screenings] == [ALLOWED, ALLOWED, REFUSED]


def test_the_table_exercises_every_permission_and_every_role():
    """Every permission is needed by some action; every role is both allowed and refused somewhere."""
    required = {permission for action in ACTIONS for group in action.required for permission in group}
    assert required == set(Permission)
    for role in ROLES:
        outcomes = {expected(action, role, OWN) for action in ACTIONS}
        assert {ALLOWED, REFUSED} <= outcomes, role
    assert expected(next(action for action in ACTIONS if action.function is requests.log_request),
                    Role.ADMINISTRATOR, OWN) == REFUSED


def public_functions_taking_a_user() -> dict[str, Callable]:
    found = {}
    for module_info in pkgutil.iter_modules(services.__path__):
        module = import_module(f"services.{module_info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            if {"user", "acting"} & set(inspect.signature(function).parameters):
                found[f"{module_info.name}.{name}"] = function
    return found


def test_every_public_function_is_in_the_matrix():
    public = public_functions_taking_a_user()
    in_table = {f"{action.function.__module__.removeprefix('services.')}.{action.function.__name__}"
                for action in ACTIONS}
    missing = sorted(set(public) - in_table - set(NOT_IN_THE_MATRIX))
    assert missing == [], "add these to ACTIONS (or to NOT_IN_THE_MATRIX with the reason)"
    assert sorted(in_table - set(public)) == []
    assert sorted(set(NOT_IN_THE_MATRIX) - set(public)) == []


def test_a_denied_call_writes_nothing_but_its_audit_row(engine, staff):
    """The refusal rolls the operation back: the only row written is the denied audit row."""
    theirs = Records(engine, staff, OTHER)
    request = theirs.request
    with db.reading(engine) as session:
        before = session.exec(select(func.count()).select_from(AuditEvent)).one()
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        requests.allocate(session, staff.team_lead, request.id, request.version, staff.practitioner.id)
    with db.reading(engine) as session:
        stored = session.get(Request, request.id)
        assert (stored.version, stored.allocated_to_id) == (request.version, None)
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == before + 1
        denial = session.exec(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (denial.user_id, denial.outcome, denial.entity, denial.entity_id) == (
        staff.team_lead.id, "denied", "request", request.id)
