"""Log a request: when it came in (date and time), who asks and how to reply, where, why, about whom."""

from datetime import timedelta

import streamlit as st

from models.codes import CodeList, RequestType, Urgency
from models.organisation import NAME_LIMIT
from models.requests import DETAIL_LIMIT, REASON_LIMIT
from services import clock, code_lists, db, organisation, requests, settings
from services.errors import InputErrors, PermissionDenied
from services.permissions import Permission
from ui import drafts
from ui.editing import toast_after_rerun
from ui.forms import FieldMessages, submission_done, submission_token
from ui.guard import app_engine, require
from ui.london_time import which_reading
from ui.person_picker import (
    clear_person_picker,
    person_picker,
    person_picker_blank,
    person_picker_fresh,
    person_picker_keys,
)

user = require(Permission.LOG_REQUEST, title="Log a request")
engine = app_engine()
st.title("Log a request")

DONE, RESET, DRAFT = "log_request_done", "log_request_reset", "log_request"
FORM_KEYS = ("received_on", "received_time", "source", "requester_name", "requester_role", "requester_phone",
             "requester_email", "site", "type", "urgency", "release_on", "reason", "custody_number", "arrested_on",
             "arrested_time", "offence", "hearing_on", "hearing_time", "received_fold", "arrested_fold", "hearing_fold")


def key(name: str) -> str:
    return f"log_{name}"


def target_words(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    for size, unit in ((24 * 60, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{minutes} minutes"


person_keys = person_picker_keys("person")
draft_keys = [key(name) for name in FORM_KEYS] + person_keys
drafts.restore(engine, user, DRAFT, draft_keys)
done = st.session_state.pop(DONE, None)
if done:
    st.success(f"Logged {done['reference']}. It is in the triage queue.", icon=":material/check_circle:")
    st.page_link("pages/3_Request.py", label=f"Open {done['reference']}", query_params={"id": str(done["id"])})
drafts.offer(engine, user, DRAFT, draft_keys)

with db.reading(engine) as session:
    sites = {site.id: site.name for site in organisation.active_sites(session, user)}
    sources = {item.code: item.label for item in code_lists.active_items(session, CodeList.SOURCE_OF_REFERRAL)}
    types = {item.code: item.label for item in code_lists.active_items(session, CodeList.REQUEST_TYPE)}
    targets = settings.response_targets(session)
for name, options in (("site", sites), ("source", sources), ("type", types)):
    if st.session_state.get(key(name)) not in (None, *options):  # withdrawn since the draft was kept
        st.session_state[key(name)] = None

now = clock.to_london(clock.now())
st.session_state.setdefault(key("received_on"), now.date())  # defaults to now, never 00:00
st.session_state.setdefault(key("received_time"), now.time().replace(second=0, microsecond=0))
BLANK = {key(name): None for name in ("source", "site", "type", "urgency", "release_on", "arrested_on",
                                        "arrested_time", "hearing_on", "hearing_time")} | {
    key(name): "" for name in ("requester_name", "requester_role", "requester_phone", "requester_email", "reason",
                               "custody_number", "offence")} | person_picker_blank("person")
logged_just_now = st.session_state.pop(RESET, False)
if drafts.started_again(DRAFT) or logged_just_now:  # before any widget exists: start afresh
    # Every field is set to its blank value, not deleted: a deleted key left the browser showing what
    # had been typed, and sending it back with the next click, so a second press of Log request stored
    # the same request again under a new submission token (and "Start again" brought the draft back).
    clear_person_picker("person")
    st.session_state.update(BLANK | person_picker_fresh("person") | {
        key("received_on"): now.date(), key("received_time"): now.time().replace(second=0, microsecond=0)})


def text(column, label: str, name: str, limit: int, area: bool = False) -> str:
    """A text field without max_chars: the browser would cut a long paste silently; the service
    refuses it with a message under the field instead, keeping every character typed."""
    widget = column.text_area if area else column.text_input
    return widget(label, key=key(name), help=f"Up to {limit:,} characters.")


messages = FieldMessages()
st.header("About whom")
choice = person_picker(engine, user, messages)

st.header("The request")
day_column, time_column = st.columns(2)
received_on = day_column.date_input("Date received", key=key("received_on"), format="DD/MM/YYYY",
                                    max_value=now.date())
received_time = time_column.time_input("Time received (24-hour, UK time)", key=key("received_time"), step=60)
received_fold = which_reading(received_on, received_time, key("received_fold"))
messages.under("received_at")
source = st.selectbox("Who is asking (source of referral)", list(sources), format_func=sources.get, index=None,
                      key=key("source"), placeholder="Choose…")
messages.under("source_of_referral")
name_column, role_column = st.columns(2)
requester_name = text(name_column, "Requester's name", "requester_name", NAME_LIMIT)
requester_role = text(role_column, "Requester's role (optional)", "requester_role", NAME_LIMIT)
messages.under("requester_name")
messages.under("requester_role")
phone_column, email_column = st.columns(2)
requester_phone = text(phone_column, "Requester's phone", "requester_phone", 30)
requester_email = text(email_column, "Requester's e-mail", "requester_email", 254)
st.caption("Give at least one way to reply.")
messages.under("requester_phone")
messages.under("requester_email")
site_id = st.selectbox("Site", list(sites), format_func=sites.get, index=None, key=key("site"), placeholder="Choose…")
messages.under("site_id")
request_type = st.selectbox("Request type", list(types), format_func=types.get, index=None, key=key("type"),
                            placeholder="Choose…")
messages.under("request_type")
release_on = st.date_input("Prison release date (prison release requests)", value=None, key=key("release_on"),
                           format="DD/MM/YYYY")
messages.under("prison_release_on")
urgency = st.radio("Urgency", Urgency.choices(), index=None, key=key("urgency"), horizontal=True,
                   format_func=lambda code: f"{Urgency.label_of(code)} (within {target_words(targets[code])})")
messages.under("urgency")
reason = text(st, "Reason for the request", "reason", REASON_LIMIT, area=True)
messages.under("reason")
with st.expander("Custody or court details"):
    custody_number = text(st, "Custody number", "custody_number", 40)
    messages.under("custody_number")
    arrest_day, arrest_time = st.columns(2)
    arrested_on = arrest_day.date_input("Date of arrest", value=None, key=key("arrested_on"), format="DD/MM/YYYY")
    arrested_time = arrest_time.time_input("Time of arrest", value=None, key=key("arrested_time"), step=60)
    arrested_fold = which_reading(arrested_on, arrested_time, key("arrested_fold"))
    messages.under("arrested_at")
    offence = text(st, "Offence", "offence", DETAIL_LIMIT)
    messages.under("offence")
    hearing_day, hearing_time = st.columns(2)
    hearing_on = hearing_day.date_input("Next hearing date", value=None, key=key("hearing_on"), format="DD/MM/YYYY")
    next_hearing_time = hearing_time.time_input("Next hearing time", value=None, key=key("hearing_time"), step=60)
    hearing_fold = which_reading(hearing_on, next_hearing_time, key("hearing_fold"))
    messages.under("next_hearing_at")
messages.under("submission")
# Named by its submission token: Streamlit keys a button by its label, so a second click queued during
# the save would otherwise press the fresh, empty form and show every field as missing.
submitted = st.button("Log request", type="primary", key=f"log_request_{submission_token(DRAFT)}")
drafts.keep(engine, user, DRAFT, draft_keys, BLANK)

if submitted:
    new = requests.NewRequest(
        received_on=received_on, received_time=received_time, source_of_referral=source,
        requester_name=requester_name, requester_role=requester_role, requester_phone=requester_phone,
        requester_email=requester_email, site_id=site_id, request_type=request_type, urgency=urgency, reason=reason,
        person_id=choice.person_id, new_person=choice.new_person, confirm_new_person=choice.confirm_new_person,
        about_nobody=choice.problem is None and choice.person_id is None and choice.new_person is None,
        custody_number=custody_number, arrested_on=arrested_on, arrested_time=arrested_time, offence=offence,
        next_hearing_on=hearing_on, next_hearing_time=next_hearing_time,
        prison_release_on=release_on if request_type == RequestType.PRISON_RELEASE else None,
        received_fold=received_fold, arrested_fold=arrested_fold, next_hearing_fold=hearing_fold,
    )
    errors = {}
    try:
        with st.spinner("Logging the request…"), db.writing(engine) as session:
            logged = requests.log_request(session, user, new, submission=submission_token(DRAFT))
            saved = {"reference": logged.reference, "id": logged.id}
    except InputErrors as refused:
        errors = refused.errors
    except PermissionDenied as denied:
        errors = {"person": str(denied)}
    if errors:
        messages.show(errors)
    else:
        submission_done(DRAFT)
        drafts.forget(engine, user, DRAFT)
        st.session_state[DONE] = saved
        st.session_state[RESET] = True
        toast_after_rerun(f"Logged {saved['reference']}.")
        st.rerun()
