"""People: find someone on record, then their record — details, requests, screenings, scores over time and
onward referrals, with follow-up of each referral. Opening a record is audited."""

import altair as alt
import streamlit as st

from models import codes
from services import clock, db, people, person_record, referrals, screening
from services.errors import Conflict, InputErrors, ServiceError
from services.permissions import Permission, has_permission
from ui.export_button import export_button
from ui.forms import FieldMessages, submission_done, submission_token
from ui.guard import app_engine, require
from ui.opening import opening
from ui.person_picker import clear_person_picker, person_picker
from ui.record_id import record_id_from_query

user = require(Permission.VIEW_PEOPLE, title="People")
engine = app_engine()
st.title("People")
person_id = record_id_from_query("id")

if person_id is None:
    messages = FieldMessages()
    choice = person_picker(engine, user, messages, key="people", question="Find or record a person",
                           allow_nobody=False, use_label="Open their record")
    if choice.person_id is not None:  # one click on a search result opens the record
        clear_person_picker("people")
        st.query_params.from_dict({"id": str(choice.person_id)})
        st.rerun()
    if choice.new_person is not None and has_permission(user, Permission.EDIT_PEOPLE) and st.button(
            "Record this person", type="primary"):
        try:
            with db.writing(engine) as session:
                created = people.create_person(session, user, choice.new_person,
                                               confirm_not_duplicate=choice.confirm_new_person,
                                               submission=submission_token("people"))
        except InputErrors as refused:
            messages.show(refused.errors)
        else:
            submission_done("people")
            clear_person_picker("people")
            st.query_params.from_dict({"id": str(created.id)})
            st.rerun()
    st.stop()

try:
    with opening(engine, "person", person_id) as (session, first):
        record = person_record.open_record(session, user, person_id, audited=first)
except ServiceError as problem:
    st.error(str(problem))
    st.stop()
prefix = f"p{person_id}."

if notice := st.session_state.pop(prefix + "notice", None):
    st.success(notice)
st.page_link("pages/4_People.py", label="Find someone else", icon=":material/search:")
st.header("Details")
st.text("\n".join(f"{label}: {text}" for label, text in person_record.details(record)))


def start_screening() -> None:
    try:
        with db.writing(engine) as session:
            draft = screening.start_for_person(session, user, person_id)
    except ServiceError as refused:
        st.session_state[prefix + "notice"] = str(refused)
        return
    st.session_state[prefix + "open"] = draft.id


if has_permission(user, Permission.SCREEN):
    st.button("Start a screening", on_click=start_screening)
    if (draft_id := st.session_state.pop(prefix + "open", None)) is not None:
        st.switch_page("pages/5_Screening.py", query_params={"id": str(draft_id)})

st.header(f"Requests ({len(record.requests)})")
for row in record.requests:
    st.page_link("pages/3_Request.py", label=f"{row.reference} · received {clock.format_datetime(row.received_at)} · "
                 f"{row.request_type} · {row.urgency} · {row.status} · {row.site}", query_params={"id": str(
                     row.request_id)})

st.header(f"Screenings ({len(record.screenings)})")
shown = ("screened_at", "status", "site", "practitioner", "phq9_total", "gad7_total", "auditc_total", "audit_total",
         "bjmhs_result", "self_harm_flag", "outcome", "referral_count")
headings = {column.key: column.heading for column in record.screening_columns}
st.dataframe([{headings[key]: clock.format_datetime(row[key]) if key == "screened_at" else row[key] for key in shown}
              for row in record.screenings], hide_index=True)
export_button(user, "screenings", {"person_id": person_id}, columns=list(shown), key="export_screenings")
for row in record.screenings:
    when = clock.format_datetime(row["screened_at"]) or "an undated draft"
    st.page_link("pages/5_Screening.py", label=f"Open the screening of {when} ({row['status'].lower()})",
                 query_params={"id": str(row["screening_id"])})

st.header("Scores over time")
if record.scores:
    # London wall-clock time as ISO text, read back by Vega as local time: raw datetimes in inline
    # values reached the browser as objects Vega could not place, and the chart drew nothing.
    points = [{"Screened": clock.to_london(point.screened_at).replace(tzinfo=None).isoformat(timespec="minutes"),
               "Instrument": point.instrument, "Total": point.total, "Band": point.band} for point in record.scores]
    st.altair_chart(alt.Chart(alt.Data(values=points)).mark_line(point=True).encode(
        x=alt.X("Screened:T", title="Screened (London time)", axis=alt.Axis(format="%d/%m/%Y")),
        y=alt.Y("Total:Q"), color="Instrument:N",
        tooltip=["Instrument:N", "Total:Q", "Band:N", alt.Tooltip("Screened:T", format="%d/%m/%Y %H:%M")]))
    st.caption("Totals of fully answered instruments at completed screenings; each instrument has its own range "
               "(PHQ-9 0–27, GAD-7 0–21, AUDIT-C 0–12, AUDIT 0–40).")
else:
    st.caption("No completed screening with a fully answered instrument yet.")

st.header(f"Onward referrals ({len(record.referrals)})")
if record.referrals:
    st.dataframe([{"Service": row.service, "Referred on": clock.format_date(row.referred_on), "Status": row.status,
                   "Attendance": row.attendance, "Outcome on": clock.format_date(row.outcome_on), "Note": row.note}
                  for row in record.referrals], hide_index=True)
    export_button(user, "onward_referrals", {"person_id": person_id}, key="export_referrals",
                  columns=["service", "referred_on", "status", "attendance", "outcome_on", "note"])
if record.referrals and has_permission(user, Permission.REFER):
    by_id = {row.referral_id: row for row in record.referrals}
    chosen = st.selectbox("Referral to update", list(by_id), format_func=lambda rid: (
        f"{by_id[rid].service} · referred {clock.format_date(by_id[rid].referred_on)} · {by_id[rid].status}"))
    row, version_key = by_id[chosen], f"{prefix}referral{chosen}.version"
    version = st.session_state.setdefault(version_key, row.version)  # the version this form was drawn from
    statuses, attendances = codes.ReferralStatus.choices(), codes.AttendanceCode.choices()
    with st.form(f"{prefix}referral{chosen}.{version}"):
        messages = FieldMessages()
        status = st.selectbox("Status", statuses, format_func=codes.ReferralStatus.label_of,
                              index=statuses.index(row.status_code))
        messages.under("status")
        attendance = st.selectbox("Attendance", attendances, format_func=codes.AttendanceCode.label_of,
                                  index=attendances.index(row.attendance_code) if row.attendance_code else None,
                                  placeholder="Not recorded")
        messages.under("attendance")
        outcome_on = st.date_input("Date of outcome", value=row.outcome_on, format="DD/MM/YYYY")
        messages.under("outcome_on")
        note = st.text_area("Note", value=row.note, help="Up to 2,000 characters.")
        messages.under("note")
        submitted = st.form_submit_button("Save referral update")
    if submitted:
        try:
            with db.writing(engine) as session:
                referrals.update_referral(session, user, chosen, version,
                                          referrals.ReferralUpdate(status, attendance, outcome_on, note))
        except Conflict as conflict:
            st.error(f"Not saved: {conflict}", icon=":material/sync_problem:")
            st.button("Reload this referral (discards your changes)", on_click=st.session_state.pop,
                      args=(version_key, None))
        except InputErrors as refused:
            messages.show(refused.errors)
        else:
            st.session_state.pop(version_key, None)
            st.session_state[prefix + "notice"] = "Referral updated."
            st.rerun()
