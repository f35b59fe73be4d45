"""Widgets of the Activities page: filter bar, list, person search and the form of each kind.

Every widget key is `<kind>_<record id or "new">_<round>_<field>`, so each record's form keeps
what was typed while it is open and starts afresh after a save. Field names match the service's
error keys, so a refusal is shown under the field it concerns.

A new record's form sends a submission token tied to its round: a double click or a rerun before
the form starts afresh sends the same token, and the service answers with the record already
logged instead of logging it twice (services/submissions.py).
"""

from datetime import date

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from models import Activity, User
from models.activities import AudienceAgency
from models.codes import ActivityKind, ConsentStatus, ReportType
from services import activities, clock, db
from services.activities import (
    EARLIEST_ACTIVITY,
    MAPPA_VALUES,
    OTHER_PRISON,
    ActivityFilters,
    ListPage,
    MappaMeetingInput,
    PreSentenceReportInput,
    PrisonReleaseInput,
    TrainingInput,
)
from services.errors import NotFound, PermissionDenied
from ui.editing import attempt, choose, creating, form_round, shown_version
from ui.forms import FieldMessages
from ui.opening import opening

SAVE_LABELS = {
    ActivityKind.MAPPA_MEETING: "Save MAPPA meeting",
    ActivityKind.TRAINING: "Save training delivered",
    ActivityKind.PRE_SENTENCE_REPORT: "Save pre-sentence report information",
    ActivityKind.PRISON_RELEASE: "Save prison release liaison",
}
SEARCH_LABELS = {
    ActivityKind.MAPPA_MEETING: "Agencies present contain",
    ActivityKind.TRAINING: "Topic contains",
    ActivityKind.PRE_SENTENCE_REPORT: "Offender manager's name contains",
    ActivityKind.PRISON_RELEASE: "Prison's name contains",
}
NEEDS_PERSON = {ActivityKind.PRE_SENTENCE_REPORT: True, ActivityKind.PRISON_RELEASE: True,
                ActivityKind.MAPPA_MEETING: False}
CATEGORY_LABELS = {1: "1 — registered sexual offenders", 2: "2 — violent offenders", 3: "3 — other dangerous offenders"}
UK_DATE = "DD/MM/YYYY"
TAB = "tab"  # the chosen kind's tab: its session state key and its name in the address


def in_sentence(label: str) -> str:
    """A label as it reads inside a sentence: "Training delivered" → "training delivered", while an
    acronym keeps its capitals ("MAPPA meeting", "PSR information")."""
    first = label.split(" ", 1)[0]
    if len(first) > 1 and first.isupper():
        return label
    return label[:1].lower() + label[1:]


# --- Filters and list ----------------------------------------------------------------------


def filter_bar(kind: ActivityKind, practitioners: list[User]) -> ActivityFilters:
    names = {person.id: person.full_name for person in practitioners}
    with st.expander("Filters"):
        start, end, by = st.columns(3)
        values = {
            "date_from": start.date_input("From", value=None, format=UK_DATE, key=f"{kind}_filter_from"),
            "date_to": end.date_input("To", value=None, format=UK_DATE, key=f"{kind}_filter_to"),
            "practitioner_id": by.selectbox("Logged by", list(names), index=None, format_func=names.get,
                                            placeholder="Anyone", key=f"{kind}_filter_by"),
            "text": st.text_input(SEARCH_LABELS[kind], key=f"{kind}_filter_text"),
        }
        if kind is ActivityKind.MAPPA_MEETING:
            category, level = st.columns(2)
            values["mappa_category"] = category.selectbox("Category", MAPPA_VALUES, index=None, placeholder="Any",
                                                          key=f"{kind}_filter_category")
            values["mappa_level"] = level.selectbox("Level", MAPPA_VALUES, index=None, placeholder="Any",
                                                    key=f"{kind}_filter_level")
        elif kind is ActivityKind.TRAINING:
            values["audience_agency"] = st.selectbox("Audience", AudienceAgency.choices(), index=None,
                                                     format_func=AudienceAgency.label_of, placeholder="Any",
                                                     key=f"{kind}_filter_audience")
        elif kind is ActivityKind.PRE_SENTENCE_REPORT:
            values["report_type"] = st.selectbox("Report type", ReportType.choices(), index=None,
                                                 format_func=ReportType.label_of, placeholder="Any",
                                                 key=f"{kind}_filter_report_type")
            values["awaiting_information"] = st.checkbox("Only those not yet provided", key=f"{kind}_filter_awaiting")
    return ActivityFilters(**values)


def show_list(page: ListPage) -> None:
    """The rows as a table with the service's headings; dates as dd/mm/yyyy."""
    frame = pd.DataFrame(page.rows, columns=[column.key for column in page.columns])
    config = {}
    for column in page.columns:
        if column.kind == "date":
            frame[column.key] = pd.to_datetime(frame[column.key])
            config[column.heading] = st.column_config.DateColumn(column.heading, format=UK_DATE)
    frame = frame.rename(columns={column.key: column.heading for column in page.columns})
    st.dataframe(frame, hide_index=True, column_config=config)
    if page.more:
        st.caption(f"Showing the newest {len(page.rows)}; narrow the filters to see older ones.")


def _describe_row(row: dict) -> str:
    day = next((value for key, value in row.items() if isinstance(value, date)), None)
    summary = row.get("person") or row.get("topic") or row.get("agencies_present") or ""
    return f"No. {row['id']} · {clock.format_date(day)} · {summary}"


def record_editor(engine: Engine, user: User, kind: ActivityKind, rows: list[dict]) -> None:
    """Choose a listed record to edit, or log a new one."""
    described = {None: f"New {in_sentence(kind.label)}"} | {row["id"]: _describe_row(row) for row in rows}
    chosen = choose("Record", described, key=f"{kind}_record")
    activity = None
    if chosen is not None:
        with db.reading(engine) as session:
            activity = activities.get_activity(session, user, chosen)
    editor(engine, user, kind, activity)


# --- The form ------------------------------------------------------------------------------


def editor(engine: Engine, user: User, kind: ActivityKind, activity: Activity | None) -> None:
    form_name = f"{kind}_{activity.id if activity else 'new'}"
    key = f"{form_name}_{form_round(form_name)}"
    with db.reading(engine) as session:
        prisons = {site.id: site.name for site in activities.prison_choices(session, user)}
        services = {item.code: item.label for item in activities.service_choices(session, user)}
        every_service = activities.service_labels(session, user)
    prison_site_id = next((site_id for site_id, name in prisons.items() if activity and name == activity.prison), None)
    defaults = activities.as_input(activity, prison_site_id) if activity else None
    # The version as first shown: a save after someone else's is then refused, not applied over it.
    version = shown_version("activity", activity.id, activity.version) if activity else None
    messages = FieldMessages()
    person_id = None
    if kind in NEEDS_PERSON:
        person_id = _person_picker(engine, user, key, getattr(defaults, "person_id", None), messages,
                                   required=NEEDS_PERSON[kind])
    with st.form(key):
        if kind is ActivityKind.MAPPA_MEETING:
            data = _mappa_fields(key, defaults, messages, person_id)
        elif kind is ActivityKind.TRAINING:
            data = _training_fields(key, defaults, messages)
        elif kind is ActivityKind.PRE_SENTENCE_REPORT:
            data = _report_fields(key, defaults, messages, person_id)
        else:
            for code in getattr(defaults, "services_referred", []):  # withdrawn since, yet on this record
                services.setdefault(code, every_service.get(code, code))
            data = _release_fields(key, defaults, messages, person_id, prisons, services)
        if not st.form_submit_button(SAVE_LABELS[kind], type="primary", key=f"{key}_submit"):
            return
    if activity is None:
        attempt(engine, user, creating(activities.log_activity, form_name), data, messages=messages,
                form=form_name, done="Saved.")
    else:
        attempt(engine, user, activities.update_activity, activity.id, version, data, messages=messages,
                form=form_name, versions=[("activity", activity.id)], done="Saved.")


def _person_picker(engine: Engine, user: User, key: str, current_id: int | None, messages: FieldMessages,
                   required: bool) -> int | None:
    typed = st.text_input("Find the person (name, date of birth or NHS number)", key=f"{key}_find")
    with db.reading(engine) as session:
        current = activities.person_choice(session, user, current_id)
        found = activities.find_people(session, user, typed) if typed.strip() else []
    options: dict[int | None, str] = {} if required else {None: "Not identified"}
    for choice in ([current] if current else []) + found:
        options[choice.person_id] = choice.label
    index = list(options).index(current_id) if current_id in options else (None if required else 0)
    chosen = st.selectbox("Person" if required else "Person, if identified", list(options), index=index,
                          format_func=options.get, placeholder="Search above, then choose", key=f"{key}_person")
    messages.under("person_id")
    return chosen


def _day(label: str, key: str, value, messages: FieldMessages, field: str, *, latest: date | None = None):
    latest = latest or clock.today_in_london()
    chosen = st.date_input(label, value=value, min_value=EARLIEST_ACTIVITY, max_value=latest, format=UK_DATE,
                           key=f"{key}_{field}")
    messages.under(field)
    return chosen


def _choice(label: str, options: list, value, key: str, field: str, messages: FieldMessages, format_func=str):
    index = options.index(value) if value in options else None
    chosen = st.selectbox(label, options, index=index, format_func=format_func, placeholder="Choose",
                          key=f"{key}_{field}")
    messages.under(field)
    return chosen


def _number(label: str, value, key: str, field: str, messages: FieldMessages):
    chosen = st.number_input(label, value=value, step=1, key=f"{key}_{field}")
    messages.under(field)
    return chosen


def _text(label: str, value, key: str, field: str, messages: FieldMessages, limit: int, area: bool = False):
    widget = st.text_area if area else st.text_input
    chosen = widget(label, value=value or "", help=f"Up to {limit:,} characters.", key=f"{key}_{field}")
    messages.under(field)
    return chosen


def _minutes(defaults, key: str, messages: FieldMessages, required: bool):
    label = "Time spent (minutes)" if required else "Time spent (minutes, optional)"
    return _number(label, getattr(defaults, "minutes_spent", None), key, "minutes_spent", messages)


def _mappa_fields(key, defaults: MappaMeetingInput | None, messages, person_id) -> MappaMeetingInput:
    today = clock.today_in_london()
    return MappaMeetingInput(
        activity_on=_day("Date of the meeting", key, getattr(defaults, "activity_on", today), messages, "activity_on"),
        mappa_category=_choice("MAPPA category", list(MAPPA_VALUES), getattr(defaults, "mappa_category", None), key,
                               "mappa_category", messages, CATEGORY_LABELS.get),
        mappa_level=_choice("MAPPA level", list(MAPPA_VALUES), getattr(defaults, "mappa_level", None), key,
                            "mappa_level", messages),
        agencies_present=_text("Agencies present", getattr(defaults, "agencies_present", ""), key,
                               "agencies_present", messages, activities.AGENCIES_LIMIT),
        contribution=_text("Contribution made", getattr(defaults, "contribution", ""), key, "contribution",
                           messages, activities.NOTE_LIMIT, area=True),
        minutes_spent=_minutes(defaults, key, messages, required=True),
        person_id=person_id,
    )


def _training_fields(key, defaults: TrainingInput | None, messages) -> TrainingInput:
    today = clock.today_in_london()
    return TrainingInput(
        activity_on=_day("Date delivered", key, getattr(defaults, "activity_on", today), messages, "activity_on"),
        audience_agency=_choice("Audience's agency", AudienceAgency.choices(),
                                getattr(defaults, "audience_agency", None), key, "audience_agency", messages,
                                AudienceAgency.label_of),
        topic=_text("Topic", getattr(defaults, "topic", ""), key, "topic", messages, activities.TOPIC_LIMIT),
        number_trained=_number("Number trained", getattr(defaults, "number_trained", None), key, "number_trained",
                               messages),
        minutes_spent=_minutes(defaults, key, messages, required=True),
    )


def _report_fields(key, defaults: PreSentenceReportInput | None, messages, person_id) -> PreSentenceReportInput:
    today = clock.today_in_london()
    return PreSentenceReportInput(
        person_id=person_id,
        offender_manager=_text("Offender manager", getattr(defaults, "offender_manager", ""), key,
                               "offender_manager", messages, activities.PERSON_LIMIT),
        report_type=_choice("Report type", ReportType.choices(), getattr(defaults, "report_type", None), key,
                            "report_type", messages, ReportType.label_of),
        requested_on=_day("Date requested", key, getattr(defaults, "requested_on", today), messages, "requested_on"),
        provided_on=_day("Date provided (leave empty until provided)", key, getattr(defaults, "provided_on", None),
                         messages, "provided_on"),
        shared_what=_text("What was shared", getattr(defaults, "shared_what", ""), key, "shared_what", messages,
                          activities.NOTE_LIMIT, area=True),
        consent=_choice("Consent under which it was shared", ConsentStatus.choices(),
                        getattr(defaults, "consent", None), key, "consent", messages, ConsentStatus.label_of),
        minutes_spent=_minutes(defaults, key, messages, required=False),
    )


def _release_fields(key, defaults: PrisonReleaseInput | None, messages, person_id, prisons: dict[int, str],
                    services: dict[str, str]) -> PrisonReleaseInput:
    options = [*prisons, OTHER_PRISON]
    current = getattr(defaults, "prison_site_id", None) or (OTHER_PRISON if defaults else None)
    site = st.selectbox("Prison", options, index=options.index(current) if current in options else None,
                        format_func=lambda choice: prisons.get(choice, "Another prison (type its name below)"),
                        placeholder="Choose the prison", key=f"{key}_prison_site")
    typed = st.text_input("Prison's name, if not in the list", help=f"Up to {activities.PERSON_LIMIT} characters.",
                          value="" if getattr(defaults, "prison_site_id", None) else getattr(defaults, "prison", ""),
                          key=f"{key}_prison")
    messages.under("prison")
    release_on = _day("Release date", key, getattr(defaults, "release_on", None), messages, "release_on",
                      latest=clock.today_in_london() + activities.LATEST_RELEASE_AHEAD)
    chosen_services = st.multiselect(
        "Services referred to before release", list(services), format_func=services.get,
        default=[code for code in getattr(defaults, "services_referred", []) if code in services],
        key=f"{key}_services_referred",
    )
    messages.under("services_referred")
    return PrisonReleaseInput(
        person_id=person_id,
        release_on=release_on,
        prison_site_id=site if site not in (None, OTHER_PRISON) else None,
        prison=typed,
        services_referred=chosen_services,
        minutes_spent=_minutes(defaults, key, messages, required=False),
    )


def linked_record(engine: Engine, user: User, record_id: int | None, can_log: bool) -> None:
    """A record opened by its link (?id=…): its opening audited once per browser session; a missing id
    and another team's refused alike by the service (an id that is not one has been refused already)."""
    st.page_link("pages/8_Activities.py", label="All activities", icon=":material/arrow_back:")
    if record_id is None:
        return
    try:
        with opening(engine, "activity", record_id) as (session, first):
            activity = activities.open_activity(session, user, record_id, audited=first)
    except (PermissionDenied, NotFound) as refused:
        st.error(str(refused))
        return
    kind = ActivityKind(activity.kind)
    st.header(f"{kind.label} No. {activity.id}")
    if can_log:
        editor(engine, user, kind, activity)
    else:
        st.caption("You may see this record but not change it.")

