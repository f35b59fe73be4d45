"""The team's other work: MAPPA meetings, training, pre-sentence report information, prison release.

Practitioners and team leads log and edit their own team's activities; nobody reaches another
team's. Each kind has a list query (`activity_list`) that returns a SQLAlchemy Core select and
the column definitions of the list on screen, so the export can stream exactly those rows in
that order. `monthly_activity_counts` gives the caseload page its counts, computed in SQL.

Which date an activity is counted under (`Activity.activity_on`):
MAPPA meeting: the meeting date; training: the day it was delivered; pre-sentence report
information: the day it was requested; prison release liaison: the release date.

People are chosen with `find_people`, which wraps the shared, team-scoped person search
(services.people.search_people).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import ClassVar

import pandas as pd
from sqlalchemy import Date, String, case, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Select
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, func, select

from models import Activity, CodeItem, Person, Site, User
from models.activities import AudienceAgency
from models.codes import ActivityKind, CodeList, ConsentStatus, ReportType, SiteKind
from models.screening import NOTE_LIMIT
from models.validators import FieldError, free_text, person_name
from services import audit, clock, code_lists, db, locking, people, submissions
from services.errors import InputErrors
from services.permissions import Permission, has_permission, require, require_team, require_team_record

MAPPA_VALUES = (1, 2, 3)
MAPPA_CATEGORY_MEANING = "1 registered sexual offenders, 2 violent offenders, 3 other dangerous offenders"
MOST_TRAINED = 500
LONGEST_MINUTES = 24 * 60
EARLIEST_ACTIVITY = date(2000, 1, 1)
LATEST_RELEASE_AHEAD = timedelta(days=366)
AGENCIES_LIMIT = 500
TOPIC_LIMIT = 200
PERSON_LIMIT = 100
SERVICES_LIMIT = 500
LIST_LIMIT = 200
SEARCH_LIMIT = 20
OTHER_PRISON = "other"


# --- What a form sends ---------------------------------------------------------------------


@dataclass
class MappaMeetingInput:
    activity_on: date | None
    mappa_category: int | None
    mappa_level: int | None
    agencies_present: str | None
    contribution: str | None
    minutes_spent: int | None
    person_id: int | None = None
    kind: ClassVar[ActivityKind] = ActivityKind.MAPPA_MEETING


@dataclass
class TrainingInput:
    activity_on: date | None
    audience_agency: str | None
    topic: str | None
    number_trained: int | None
    minutes_spent: int | None
    kind: ClassVar[ActivityKind] = ActivityKind.TRAINING


@dataclass
class PreSentenceReportInput:
    person_id: int | None
    offender_manager: str | None
    report_type: str | None
    requested_on: date | None
    provided_on: date | None = None
    shared_what: str | None = None
    consent: str | None = None
    minutes_spent: int | None = None
    kind: ClassVar[ActivityKind] = ActivityKind.PRE_SENTENCE_REPORT


@dataclass
class PrisonReleaseInput:
    """The prison is one of the team's active prison sites (`prison_site_id`) or a typed name."""

    person_id: int | None
    release_on: date | None
    prison_site_id: int | None = None
    prison: str | None = None
    services_referred: list[str] = field(default_factory=list)
    minutes_spent: int | None = None
    kind: ClassVar[ActivityKind] = ActivityKind.PRISON_RELEASE


ActivityInput = MappaMeetingInput | TrainingInput | PreSentenceReportInput | PrisonReleaseInput
INPUT_TYPES: dict[ActivityKind, type] = {
    kind_input.kind: kind_input
    for kind_input in (MappaMeetingInput, TrainingInput, PreSentenceReportInput, PrisonReleaseInput)
}


# --- Checking input ------------------------------------------------------------------------


class _Checker:
    """Collects every problem with a form, so the page can mark each field at once."""

    def __init__(self, session: Session, user: User, existing: Activity | None):
        self.session, self.user, self.existing = session, user, existing
        self.errors: dict[str, str] = {}
        self.today = clock.today_in_london()

    def text(self, name: str, value: str | None, limit: int, *, required: bool, words: str | None = None,
             one_line: bool = False) -> str | None:
        check = person_name if one_line else free_text
        try:
            return check(value, words or name, limit, required=required) or None
        except FieldError as error:
            self.errors[name] = error.message
            return None

    def number(self, name: str, value, label: str, low: int, high: int, *, required: bool,
               meaning: str = "") -> int | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.errors[name] = f"{label} is required."
            return None
        number = _whole_number(value)
        if number is None:
            self.errors[name] = f"{label} must be a whole number."
        elif not low <= number <= high:
            allowed = f"{low}, {low + 1} or {high}" if high - low == 2 else f"from {low} to {high}"
            self.errors[name] = f"{label} must be {allowed}{meaning}; you entered {number}."
        else:
            return number
        return None

    def day(self, name: str, value, label: str, *, required: bool = True, latest: date | None = None,
            latest_reason: str = "today") -> date | None:
        if value is None:
            if required:
                self.errors[name] = f"{label} is required; enter it as dd/mm/yyyy."
            return None
        if not isinstance(value, date):
            self.errors[name] = f"{label} must be a date, entered as dd/mm/yyyy."
            return None
        latest = self.today if latest is None else latest
        if value > latest:
            self.errors[name] = (
                f"{label} cannot be after {latest_reason} ({clock.format_date(latest)}); "
                f"you entered {clock.format_date(value)}."
            )
        elif value < EARLIEST_ACTIVITY:
            self.errors[name] = (
                f"{label} cannot be before {clock.format_date(EARLIEST_ACTIVITY)}; you entered "
                f"{clock.format_date(value)}. Check the year."
            )
        else:
            return value
        return None

    def choice(self, name: str, value: str | None, codes, label: str) -> str | None:
        if value is None or value == "":
            self.errors[name] = f"Choose the {label}."
            return None
        if value not in codes.choices():
            self.errors[name] = f"Choose the {label} from the list."
            return None
        return value

    def person(self, person_id: int | None, *, required: bool) -> int | None:
        if person_id is None:
            if required:
                self.errors["person_id"] = "Choose the person: search by name or NHS number, then pick from the list."
            return None
        person = self.session.get(Person, person_id)
        if person is None or person.team_id != self.user.team_id:
            self.errors["person_id"] = "No such person in your team's records; search again and choose from the list."
            return None
        return person_id

    def minutes(self, value, *, required: bool) -> int | None:
        return self.number("minutes_spent", value, "Time spent (minutes)", 1, LONGEST_MINUTES, required=required,
                           meaning=" (up to a whole day)")


def _whole_number(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if digits and all("0" <= character <= "9" for character in digits):
            return int(text)
    return None


def _mappa_values(check: _Checker, data: MappaMeetingInput) -> dict:
    return {
        "activity_on": check.day("activity_on", data.activity_on, "Date of the meeting"),
        "mappa_category": check.number("mappa_category", data.mappa_category, "MAPPA category", 1, 3,
                                       required=True, meaning=f" ({MAPPA_CATEGORY_MEANING})"),
        "mappa_level": check.number("mappa_level", data.mappa_level, "MAPPA level", 1, 3, required=True),
        "agencies_present": check.text("agencies_present", data.agencies_present, AGENCIES_LIMIT, required=True),
        "person_id": check.person(data.person_id, required=False),
        "contribution": check.text("contribution", data.contribution, NOTE_LIMIT, required=True,
                                   words="contribution_made"),
        "minutes_spent": check.minutes(data.minutes_spent, required=True),
    }


def _training_values(check: _Checker, data: TrainingInput) -> dict:
    return {
        "activity_on": check.day("activity_on", data.activity_on, "Date delivered"),
        "audience_agency": check.choice("audience_agency", data.audience_agency, AudienceAgency, "audience's agency"),
        "topic": check.text("topic", data.topic, TOPIC_LIMIT, required=True, one_line=True),
        "number_trained": check.number("number_trained", data.number_trained, "Number trained", 0, MOST_TRAINED,
                                       required=True),
        "minutes_spent": check.minutes(data.minutes_spent, required=True),
    }


def _pre_sentence_report_values(check: _Checker, data: PreSentenceReportInput) -> dict:
    requested = check.day("requested_on", data.requested_on, "Date requested")
    provided = check.day("provided_on", data.provided_on, "Date provided", required=False)
    if requested and provided and provided < requested:
        check.errors["provided_on"] = (
            f"Date provided ({clock.format_date(provided)}) cannot be before the date requested "
            f"({clock.format_date(requested)})."
        )
    shared = check.text("shared_what", data.shared_what, NOTE_LIMIT, required=provided is not None,
                        words="what_was_shared")
    consent = None
    if data.consent:
        consent = check.choice("consent", data.consent, ConsentStatus, "consent under which it was shared")
    elif shared:
        check.errors["consent"] = "Choose the consent under which the information was shared."
    return {
        "person_id": check.person(data.person_id, required=True),
        "offender_manager": check.text("offender_manager", data.offender_manager, PERSON_LIMIT, required=True,
                                       one_line=True),
        "report_type": check.choice("report_type", data.report_type, ReportType, "report type"),
        "requested_on": requested,
        "activity_on": requested,
        "provided_on": provided,
        "shared_what": shared,
        "consent": consent,
        "minutes_spent": check.minutes(data.minutes_spent, required=False),
    }


def _prison_release_values(check: _Checker, data: PrisonReleaseInput) -> dict:
    latest = check.today + LATEST_RELEASE_AHEAD
    release = check.day("release_on", data.release_on, "Release date", latest=latest,
                        latest_reason="a year from today")
    return {
        "person_id": check.person(data.person_id, required=True),
        "prison": _prison(check, data),
        "release_on": release,
        "activity_on": release,
        "services_referred": _services_referred(check, data.services_referred),
        "minutes_spent": check.minutes(data.minutes_spent, required=False),
    }


def _prison(check: _Checker, data: PrisonReleaseInput) -> str | None:
    if data.prison_site_id is None:
        return check.text("prison", data.prison, PERSON_LIMIT, required=True, words="prison_name", one_line=True)
    site = check.session.get(Site, data.prison_site_id)
    if site is None or site.team_id != check.user.team_id or site.kind != SiteKind.PRISON:
        check.errors["prison"] = "Choose the prison from the list, or type its name."
        return None
    if not site.active:
        check.errors["prison"] = (
            f"{site.name} is no longer an active site; choose another prison from the list, or type its name."
        )
        return None
    return site.name


def _services_referred(check: _Checker, codes: Sequence[str] | None) -> str | None:
    chosen = list(dict.fromkeys(codes or []))
    already = set(_split_codes(check.existing.services_referred)) if check.existing else set()
    allowed = {item.code for item in code_lists.active_items(check.session, CodeList.ONWARD_SERVICE)}
    # A service withdrawn since this record was saved may stay on it; it may not be newly chosen.
    stale = [code for code in chosen if code not in allowed and code not in already]
    if stale:
        labels = code_lists.labels(check.session, CodeList.ONWARD_SERVICE)
        names = ", ".join(labels.get(code, code) for code in stale)
        check.errors["services_referred"] = (
            f"{names} is not an active choice in onward services; choose from the list "
            "(it may have been withdrawn by an administrator)."
        )
        return None
    joined = ",".join(chosen)
    if len(joined) > SERVICES_LIMIT:
        check.errors["services_referred"] = "Too many services chosen to store; choose the main ones."
        return None
    return joined or None


def _split_codes(joined: str | None) -> list[str]:
    return [code for code in (joined or "").split(",") if code]


VALUE_BUILDERS = {
    ActivityKind.MAPPA_MEETING: _mappa_values,
    ActivityKind.TRAINING: _training_values,
    ActivityKind.PRE_SENTENCE_REPORT: _pre_sentence_report_values,
    ActivityKind.PRISON_RELEASE: _prison_release_values,
}


def _checked_values(session: Session, user: User, data: ActivityInput, existing: Activity | None) -> dict:
    check = _Checker(session, user, existing)
    values = VALUE_BUILDERS[data.kind](check, data)
    if check.errors:
        raise InputErrors(check.errors)
    return values


# --- Logging and editing -------------------------------------------------------------------


def log_activity(session: Session, user: User, data: ActivityInput, *, submission: str | None = None) -> Activity:
    """Record a new activity for the user's team, with its audit row, in one transaction.

    A second call with the same `submission` token (a double click, a rerun) returns the activity
    the first one logged and writes nothing (services/submissions.py).
    """
    db.require_writing(session)
    require(user, Permission.LOG_ACTIVITY)
    if (earlier := submissions.claim(session, user, submission, "activity")) is not None:
        return _team_activity(session, user, earlier)
    values = _checked_values(session, user, data, existing=None)
    activity = Activity(kind=data.kind.value, team_id=user.team_id, practitioner_id=user.id,
                        updated_by_id=user.id, **values)
    session.add(activity)
    session.flush()
    submissions.fulfil(session, submission, activity.id)
    audit.record(session, user, "log_activity", entity="activity", entity_id=activity.id,
                 detail=f"kind {data.kind.value}")
    return activity


def update_activity(session: Session, user: User, activity_id: int, expected_version: int,
                    data: ActivityInput) -> Activity:
    """Save changes to the version the user saw; a save by someone else since is a Conflict."""
    db.require_writing(session)
    require(user, Permission.LOG_ACTIVITY)
    activity = _team_activity(session, user, activity_id)
    if activity.kind != data.kind:
        raise InputErrors({"kind": "This record is a different kind of activity; reload the page."})
    locking.check_version(session, activity, expected_version)
    values = _checked_values(session, user, data, existing=activity)
    changed = [name for name, value in values.items() if getattr(activity, name) != value]
    if not changed:
        return activity
    for name in changed:
        setattr(activity, name, values[name])
    locking.touch(activity, user)
    session.add(activity)
    locking.flush(session)
    # Names of the fields changed, never their values (which may be clinical).
    audit.record(session, user, "update_activity", entity="activity", entity_id=activity.id,
                 detail=f"kind {activity.kind}; changed {', '.join(sorted(changed))}")
    return activity


def get_activity(session: Session, user: User, activity_id: int) -> Activity:
    """One activity of the user's team; another team's is refused (and the refusal audited)."""
    require(user, Permission.VIEW_ACTIVITIES)
    return _team_activity(session, user, activity_id)


def open_activity(session: Session, user: User, activity_id: int, *, audited: bool = True) -> Activity:
    """One activity for the screen; opening it is audited ("view_activity", in a writing session),
    as a MAPPA meeting or a prison release names a person. A page redrawing a record it has already
    audited in the same browser session passes `audited=False` (ui/opening.py)."""
    activity = get_activity(session, user, activity_id)
    if audited:
        db.require_writing(session)
        audit.record(session, user, "view_activity", entity="activity", entity_id=activity.id)
    return activity


def _team_activity(session: Session, user: User, activity_id: int) -> Activity:
    # A missing id and another team's read the same and are audited the same (services/permissions.py).
    return require_team_record(user, session.get(Activity, activity_id), entity="activity", entity_id=activity_id)


def as_input(activity: Activity, prison_site_id: int | None = None) -> ActivityInput:
    """The form values of a saved activity (to fill an edit form)."""
    kind_input = INPUT_TYPES[ActivityKind(activity.kind)]
    values = {
        name: getattr(activity, name)
        for name in (input_field.name for input_field in fields(kind_input))
        if hasattr(activity, name)
    }
    if kind_input is PrisonReleaseInput:
        values["services_referred"] = _split_codes(activity.services_referred)
        values["prison_site_id"] = prison_site_id
    return kind_input(**values)


# --- Choices for the forms -----------------------------------------------------------------


@dataclass(frozen=True)
class PersonChoice:
    person_id: int
    label: str


def find_people(session: Session, user: User, text: str, limit: int = SEARCH_LIMIT) -> list[PersonChoice]:
    """People of the user's team matching what is typed (the shared person search), one line each."""
    require(user, Permission.LOG_ACTIVITY)
    return [PersonChoice(match.person_id, people.describe(match))
            for match in people.search_people(session, user, text, limit)]


def person_choice(session: Session, user: User, person_id: int | None) -> PersonChoice | None:
    """The label of a person already on a record, for an edit form."""
    require(user, Permission.VIEW_ACTIVITIES)
    person = session.get(Person, person_id) if person_id else None
    if person is None:
        return None
    require_team(user, person.team_id, entity="person", entity_id=person.id)  # refused and audited, not just empty
    return PersonChoice(person.id, people.describe(person))


def prison_choices(session: Session, user: User) -> list[Site]:
    """The team's active prisons (sites of kind prison), for the prison release form."""
    require(user, Permission.LOG_ACTIVITY)
    query = (
        select(Site)
        .where(Site.team_id == user.team_id, Site.active, Site.kind == SiteKind.PRISON.value)
        .order_by(Site.name)
    )
    return list(session.exec(query).all())


def service_choices(session: Session, user: User) -> list[CodeItem]:
    require(user, Permission.LOG_ACTIVITY)
    return code_lists.active_items(session, CodeList.ONWARD_SERVICE)


def service_labels(session: Session, user: User) -> dict[str, str]:
    """Every onward service's label, withdrawn ones too, so an old record's choices still read."""
    require(user, Permission.VIEW_ACTIVITIES)
    return code_lists.labels(session, CodeList.ONWARD_SERVICE)


def team_practitioners(session: Session, user: User) -> list[User]:
    """Everyone in the team, for the 'logged by' filter."""
    require(user, Permission.VIEW_ACTIVITIES)
    return list(session.exec(select(User).where(User.team_id == user.team_id).order_by(User.full_name)).all())


# --- Lists ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListColumn:
    """One column of a list. `kind` is one of the export's column kinds:
    "identifier", "text", "date", "number"."""

    key: str
    heading: str
    kind: str


@dataclass(frozen=True)
class ActivityFilters:
    date_from: date | None = None
    date_to: date | None = None
    practitioner_id: int | None = None
    person_id: int | None = None
    text: str | None = None  # words in the agencies, topic, offender manager or prison
    mappa_category: int | None = None
    mappa_level: int | None = None
    audience_agency: str | None = None
    report_type: str | None = None
    awaiting_information: bool = False  # pre-sentence report information not yet provided


@dataclass(frozen=True)
class ActivityList:
    """What a list shows: run `query` to get its rows, each a mapping keyed by the columns' keys.

    The query is team-scoped and ordered (newest first); add `.limit()` for a screen, or stream it
    whole (`execution_options(yield_per=…)`) for an export. `filters` describes the filters in
    words, for the export's second sheet.
    """

    kind: ActivityKind
    title: str
    query: Select
    columns: tuple[ListColumn, ...]
    filters: tuple[tuple[str, str], ...]


def _label_case(column, codes) -> object:
    """A code column as its label, in SQL; a code no longer (or never) in the list reads as its
    words ("youth_offending_team" → "Youth offending team"), never as the raw code."""
    words = (func.upper(func.substr(column, 1, 1), type_=String)
             + func.replace(func.substr(column, 2), "_", " ", type_=String))
    return case({member.value: member.label for member in codes}, value=column, else_=words)


def _person_name():
    return (Person.given_name + literal(" ") + Person.family_name).label("person")


def _services_referred_labels():
    wrapped = literal(",") + Activity.services_referred + literal(",")
    return (
        select(func.aggregate_strings(CodeItem.label, ", "))
        .where(
            CodeItem.list_name == CodeList.ONWARD_SERVICE.value,
            wrapped.like(literal("%,") + CodeItem.code + literal(",%")),
        )
        .scalar_subquery()
        .label("services_referred")
    )


def _columns_for(kind: ActivityKind) -> list[tuple[ListColumn, object]]:
    practitioner = (ListColumn("practitioner", "Logged by", "text"), User.full_name.label("practitioner"))
    reference = (ListColumn("id", "Number", "identifier"), Activity.id.label("id"))
    minutes = (ListColumn("minutes_spent", "Minutes spent", "number"), Activity.minutes_spent)
    person = (ListColumn("person", "Person", "text"), _person_name())
    if kind is ActivityKind.MAPPA_MEETING:
        return [
            reference,
            (ListColumn("activity_on", "Meeting date", "date"), Activity.activity_on),
            person,
            (ListColumn("mappa_category", "Category", "number"), Activity.mappa_category),
            (ListColumn("mappa_level", "Level", "number"), Activity.mappa_level),
            (ListColumn("agencies_present", "Agencies present", "text"), Activity.agencies_present),
            (ListColumn("contribution", "Contribution made", "text"), Activity.contribution),
            minutes,
            practitioner,
        ]
    if kind is ActivityKind.TRAINING:
        return [
            reference,
            (ListColumn("activity_on", "Date delivered", "date"), Activity.activity_on),
            (ListColumn("audience_agency", "Audience", "text"),
             _label_case(Activity.audience_agency, AudienceAgency).label("audience_agency")),
            (ListColumn("topic", "Topic", "text"), Activity.topic),
            (ListColumn("number_trained", "Number trained", "number"), Activity.number_trained),
            minutes,
            practitioner,
        ]
    if kind is ActivityKind.PRE_SENTENCE_REPORT:
        return [
            reference,
            person,
            (ListColumn("offender_manager", "Offender manager", "text"), Activity.offender_manager),
            (ListColumn("report_type", "Report type", "text"),
             _label_case(Activity.report_type, ReportType).label("report_type")),
            (ListColumn("requested_on", "Requested", "date"), Activity.requested_on),
            (ListColumn("provided_on", "Provided", "date"), Activity.provided_on),
            (ListColumn("shared_what", "What was shared", "text"), Activity.shared_what),
            (ListColumn("consent", "Consent", "text"), _label_case(Activity.consent, ConsentStatus).label("consent")),
            minutes,
            practitioner,
        ]
    return [
        reference,
        person,
        (ListColumn("prison", "Prison", "text"), Activity.prison),
        (ListColumn("release_on", "Release date", "date"), Activity.release_on),
        (ListColumn("services_referred", "Services referred before release", "text"), _services_referred_labels()),
        minutes,
        practitioner,
    ]


def _contains(column, words: str):
    return func.lower(column).contains(words.lower(), autoescape=True)


def _filter_conditions(kind: ActivityKind, filters: ActivityFilters) -> tuple[list, list[tuple[str, str]]]:
    conditions: list = []
    described: list[tuple[str, str]] = []
    if filters.date_from:
        conditions.append(Activity.activity_on >= filters.date_from)
        described.append(("From", clock.format_date(filters.date_from)))
    if filters.date_to:
        conditions.append(Activity.activity_on <= filters.date_to)
        described.append(("To", clock.format_date(filters.date_to)))
    if filters.practitioner_id:
        conditions.append(Activity.practitioner_id == filters.practitioner_id)
        described.append(("Logged by (user number)", str(filters.practitioner_id)))
    if filters.person_id:
        conditions.append(Activity.person_id == filters.person_id)
        described.append(("Person (number)", str(filters.person_id)))
    words = (filters.text or "").strip()
    if words:
        searched = {
            ActivityKind.MAPPA_MEETING: [Activity.agencies_present],
            ActivityKind.TRAINING: [Activity.topic],
            ActivityKind.PRE_SENTENCE_REPORT: [Activity.offender_manager],
            ActivityKind.PRISON_RELEASE: [Activity.prison],
        }[kind]
        conditions.append(or_(*[_contains(column, words) for column in searched]))
        described.append(("Containing", words))
    if kind is ActivityKind.MAPPA_MEETING and filters.mappa_category:
        conditions.append(Activity.mappa_category == filters.mappa_category)
        described.append(("MAPPA category", str(filters.mappa_category)))
    if kind is ActivityKind.MAPPA_MEETING and filters.mappa_level:
        conditions.append(Activity.mappa_level == filters.mappa_level)
        described.append(("MAPPA level", str(filters.mappa_level)))
    if kind is ActivityKind.TRAINING and filters.audience_agency:
        conditions.append(Activity.audience_agency == filters.audience_agency)
        described.append(("Audience", AudienceAgency.label_of(filters.audience_agency)))
    if kind is ActivityKind.PRE_SENTENCE_REPORT and filters.report_type:
        conditions.append(Activity.report_type == filters.report_type)
        described.append(("Report type", ReportType.label_of(filters.report_type)))
    if kind is ActivityKind.PRE_SENTENCE_REPORT and filters.awaiting_information:
        conditions.append(Activity.provided_on.is_(None))
        described.append(("Only", "information not yet provided"))
    return conditions, described


def activity_list(user: User, kind: ActivityKind | str, filters: ActivityFilters | None = None) -> ActivityList:
    """The list of one kind of activity in the user's team: a Core select plus its columns."""
    require(user, Permission.VIEW_ACTIVITIES)
    kind = ActivityKind(kind)
    filters = filters or ActivityFilters()
    pairs = _columns_for(kind)
    conditions, described = _filter_conditions(kind, filters)
    query = (
        select(*[expression for _, expression in pairs])
        .select_from(Activity)
        .join(User, User.id == Activity.practitioner_id)
        .outerjoin(Person, Person.id == Activity.person_id)
        .where(Activity.team_id == user.team_id, Activity.kind == kind.value, *conditions)
        .order_by(Activity.activity_on.desc(), Activity.id.desc())
    )
    return ActivityList(
        kind=kind,
        title=kind.label,
        query=query,
        columns=tuple(column for column, _ in pairs),
        filters=(("Activity", kind.label), *described),
    )


@dataclass(frozen=True)
class ListPage:
    columns: tuple[ListColumn, ...]
    rows: list[dict]
    more: bool  # True when more rows match than were fetched


def list_activities(session: Session, user: User, kind: ActivityKind | str,
                    filters: ActivityFilters | None = None, limit: int = LIST_LIMIT) -> ListPage:
    """The newest `limit` rows of a list, as dicts keyed by column key."""
    listing = activity_list(user, kind, filters)
    rows = [dict(row._mapping) for row in session.exec(listing.query.limit(limit + 1)).all()]
    return ListPage(columns=listing.columns, rows=rows[:limit], more=len(rows) > limit)


# --- Monthly counts for the caseload page --------------------------------------------------


class _MonthStart(FunctionElement):
    """The first day of a date's month, in SQL (SQLite and PostgreSQL spell it differently)."""

    type = Date()
    name = "activity_month_start"
    inherit_cache = True


@compiles(_MonthStart)
def _month_start_default(element, compiler, **kw):
    return f"CAST(date_trunc('month', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(_MonthStart, "sqlite")
def _month_start_sqlite(element, compiler, **kw):
    return f"date({compiler.process(element.clauses, **kw)}, 'start of month')"


MONTHLY_COLUMNS = ["month", "kind", "kind_label", "activities", "minutes_spent", "people_trained"]


def monthly_activity_counts(session: Session, user: User, start: date, end: date) -> pd.DataFrame:
    """Activities of the user's team by month and kind, for `start` ≤ date ≤ `end` (both inclusive).

    One row per month (its first day, in `month`) and kind, months without activity included as
    zeros, in month then kind order. Columns: month, kind (code), kind_label, activities (count),
    minutes_spent (total), people_trained (total; training only). No names. Counted in SQL.
    """
    if not (has_permission(user, Permission.VIEW_ACTIVITIES) or has_permission(user, Permission.VIEW_CASELOAD)):
        require(user, Permission.VIEW_CASELOAD)
    if start > end:
        raise InputErrors({"start": "The start of the period must not be after its end."})
    month = _MonthStart(Activity.activity_on)
    query = (
        select(
            month.label("month"),
            Activity.kind,
            func.count().label("activities"),
            func.coalesce(func.sum(Activity.minutes_spent), 0).label("minutes_spent"),
            func.coalesce(func.sum(Activity.number_trained), 0).label("people_trained"),
        )
        .where(Activity.team_id == user.team_id, Activity.activity_on >= start, Activity.activity_on <= end)
        .group_by(month, Activity.kind)
    )
    found = {(row.month, row.kind): row for row in session.exec(query).all()}
    rows = []
    for first_day in _months(start, end):
        for kind in ActivityKind:
            row = found.get((first_day, kind.value))
            rows.append({
                "month": first_day,
                "kind": kind.value,
                "kind_label": kind.label,
                "activities": int(row.activities) if row else 0,
                "minutes_spent": int(row.minutes_spent) if row else 0,
                "people_trained": int(row.people_trained) if row else 0,
            })
    return pd.DataFrame(rows, columns=MONTHLY_COLUMNS)


def _months(start: date, end: date) -> list[date]:
    months, current = [], start.replace(day=1)
    while current <= end:
        months.append(current)
        current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
    return months

