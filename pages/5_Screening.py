"""Screening: one page in sections, each saved into the draft; live instrument scores; completion; amendment."""

import streamlit as st

from models import codes
from services import clock, code_lists, db, organisation, referrals, screening
from services.errors import Conflict, InputErrors, ServiceError
from services.permissions import Permission
from ui import drafts, instrument_form
from ui.editing import done_at, say_done, toast_after_rerun
from ui.forms import FieldMessages, submission_done, submission_token
from ui.guard import app_engine, require
from ui.london_time import which_reading
from ui.record_id import record_id_from_query
from ui.screening_start import choose_what_to_screen

user = require(Permission.SCREEN, title="Screening")
engine = app_engine()
st.title("Screening")


screening_id = record_id_from_query("id")
if screening_id is None:
    choose_what_to_screen(engine, user, record_id_from_query("request"))
    st.stop()

try:
    with db.reading(engine) as session:
        view = screening.get_screening(session, user, screening_id)
        site_names = {site.id: site.name for site in organisation.active_sites(session, user)}
        vulnerability_labels = code_lists.labels(session, codes.CodeList.VULNERABILITY)
        vulnerability_options = [item.code for item in code_lists.active_items(session, codes.CodeList.VULNERABILITY)]
        service_labels = code_lists.labels(session, codes.CodeList.ONWARD_SERVICE)
        service_options = [item.code for item in code_lists.active_items(session, codes.CodeList.ONWARD_SERVICE)]
        referral_rows = referrals.referrals_for_screening(session, user, screening_id)
except ServiceError as problem:
    st.error(str(problem))
    st.stop()

prefix = f"s{screening_id}."
k = prefix.__add__
DRAFT = f"screening:{screening_id}"
REFERRAL_KEYS = [k(f"referral.{name}") for name in referrals.NewReferral.__dataclass_fields__]
BOOKKEEPING = {k(name) for name in ("viewed", "problems", "notice", "conflict", "blank", "reload", "complete")}


def draft_keys() -> list[str]:
    """Every field of this screening held on screen (the section buttons and bookkeeping left out)."""
    return [key for key in st.session_state if str(key).startswith(prefix) and key not in BOOKKEEPING
            and not str(key).endswith((".save", ".discard"))] + [key for key in REFERRAL_KEYS
                                                                    if key not in st.session_state]


if k("site_id") not in st.session_state:  # widgets drawn afresh: start them, and the version, from the database
    st.session_state[k("version")] = view.screening.version
    for name, value in screening.form_values(view).items():
        st.session_state.setdefault(k(name), value)
    instrument_form.seed(prefix, view.results)
    # What the form holds with nothing typed since the last save: a draft is kept only beyond it.
    st.session_state[k("blank")] = {key: st.session_state.get(key) for key in draft_keys()}
    drafts.restore(engine, user, DRAFT, draft_keys())
if k("viewed") not in st.session_state:  # the opening of a screening is audited once per browser session
    with db.writing(engine) as session:
        screening.record_view(session, user, screening_id)
    st.session_state[k("viewed")] = True
problems: dict[str, dict[str, str]] = st.session_state.setdefault(k("problems"), {})
amending = view.complete

st.text(view.person_line)  # names as typed: never markdown
st.text(view.context_line)  # staff names and references: plain text too
for flag in view.risk_flags:
    if view.screening.risk_to_self_note:  # dealt with: the risk section records the assessment
        st.info(f"Risk flag: {flag}. Risk to self assessed in section 5 "
                f"({codes.RiskLevel.label_of(view.screening.risk_to_self) or 'level not recorded'}).",
                icon=":material/task_alt:")
    else:
        st.error(f"Risk flag: {flag}. Assess the risk to self now (section 5).", icon=":material/warning:")


def reload() -> None:
    """Forget what this page holds for the screening (and the kept draft): drawn again from the database."""
    drafts.forget(engine, user, DRAFT)
    for key in [key for key in st.session_state if str(key).startswith(prefix) and key != k("viewed")]:
        del st.session_state[key]


drafts.offer(engine, user, DRAFT, draft_keys())
if k("conflict") in st.session_state:
    st.error(f"Not saved: {st.session_state[k('conflict')]}", icon=":material/sync_problem:")
    st.button("Reload the screening (discards changes not yet saved)", on_click=reload, key=k("reload"))


def save(section: str, messages: FieldMessages, data=None) -> None:
    """Save one section into the draft (or amend it), keeping what was typed when it is refused."""
    kind, operation = screening.SECTION_FORMS.get(section, (None, screening.save_instruments))
    values = {name: st.session_state.get(k(name)) for name in (kind.__dataclass_fields__ if kind else ())}
    reason = st.session_state.get(k(f"{section}.amendment_reason")) if amending else None
    try:
        with st.spinner("Saving…"), db.writing(engine) as session:
            saved = operation(session, user, screening_id, st.session_state[k("version")],
                              data or screening.section_input(section, values), amendment_reason=reason)
    except Conflict as conflict:
        st.session_state[k("conflict")] = str(conflict)
        st.rerun()
    except InputErrors as refused:
        messages.show(refused.errors)
    else:
        st.session_state[k("version")] = saved.version
        problems.pop(section, None)
        saved_notice(section, f"{screening.SECTIONS[section]} {'amended' if amending else 'saved'}.")


def saved_notice(section_name: str, message: str) -> None:
    """Say so where the eye is: a toast, and the message under the section's own button."""
    say_done(k("notice"), section_name, message)
    toast_after_rerun(message)
    st.rerun()


def section(number: int, name: str, draw, *, button: str | None = None, submit=None) -> None:
    """A numbered section: its completion problems, its fields, an amendment reason when complete, its button.

    Not an `st.form`: each field reaches the server (and the kept draft) when it is left, so a
    refresh or a time-out loses nothing typed in a section not yet saved.
    """
    st.header(f"{number}. {screening.SECTIONS[name]}{' ✓' if view.section_saved(name) else ''}")
    for message in problems.get(name, {}).values():
        st.error(message, icon=":material/error:")
    with st.container(border=True):
        messages = FieldMessages()
        data = draw(messages)
        if amending and submit is None:
            field(messages, f"{name}.amendment_reason", label="Reason for amendment (required to change a completed "
                  "screening)", error="amendment_reason")
        label = button or f"{'Amend' if amending else 'Save'} {screening.SECTIONS[name].lower()}"
        # A create's button is named by its submission token: a second click queued during the save
        # (Streamlit keys a button by its label) must not press the fresh, empty form.
        token = f".{submission_token(DRAFT)}" if submit is not None else ""
        # The notice beside its button, not under it: a button clicked at the foot of the window would
        # leave a notice drawn below it out of sight.
        button_column, notice_column = st.columns([1, 2], vertical_alignment="center")
        if button_column.button(label, key=k(f"{name}{token}.save")):
            (submit or save)(name, messages, data)
        if notice := done_at(k("notice"), name):
            notice_column.success(notice, icon=":material/check_circle:")


def field(messages: FieldMessages, name: str, widget="text", label=None, error=None, **options) -> None:
    label = label or screening.label(name)
    if widget in ("text", "area"):
        # No max_chars: the browser would cut a long paste silently; the service refuses it with a message instead.
        (st.text_input if widget == "text" else st.text_area)(label, key=k(name),
                                                              help=f"Up to {options.get('limit', 2000):,} characters.")
    elif widget in ("code", "select"):
        labels = options.get("labels") or {code: options["codes"].label_of(code) for code in options["codes"]}
        st.selectbox(label, options.get("choices", list(labels)), format_func=lambda code: labels.get(code, code),
                     index=None, key=k(name))
    elif widget == "date":
        st.date_input(label, key=k(name), format="DD/MM/YYYY", value=None)
    elif widget == "when":
        day, hour = st.columns(2)
        on = day.date_input(f"{label}: date", key=k(options["day"]), format="DD/MM/YYYY")
        at = hour.time_input(f"{label}: time (24-hour, London)", key=k(options["hour"]), step=60)
        which_reading(on, at, k(options["fold"]))
    messages.under(error or name)


def person_and_context(messages: FieldMessages) -> None:
    sites = site_names | ({view.screening.site_id: view.site_name} if view.screening.site_id else {})
    st.selectbox("Site", list(sites), format_func=sites.get, index=None, key=k("site_id"))
    messages.under("site_id")
    field(messages, "screened_at", "when", "Screening", day="screened_on", hour="screened_time", fold="screened_fold")
    field(messages, "contact_mechanism", "code", codes=codes.ContactMechanism)
    field(messages, "attendance", "code", codes=codes.AttendanceCode)
    field(messages, "custody_or_court_details", "area")
    under_18 = view.age is not None and view.age < screening.ADULT_AGE
    st.checkbox("Appropriate adult required", key=k("appropriate_adult_required"), disabled=under_18,
                help="Always required for under-18s (PACE Code C): it cannot be unset for them.")
    messages.under("appropriate_adult_required")
    field(messages, "appropriate_adult_reason", label="Reason an appropriate adult is required (adults)")


def consent(messages: FieldMessages) -> None:
    for name in ("consent_to_screening", "consent_to_share"):
        field(messages, name, "code", codes=codes.ConsentStatus)
    field(messages, "capacity_decided_by", label="Capacity decided by (if the person lacks capacity)", limit=100)
    field(messages, "capacity_reason", "area")


def vulnerabilities(messages: FieldMessages) -> None:
    options = list(dict.fromkeys(vulnerability_options + view.vulnerability_codes))
    st.multiselect("Vulnerabilities identified", options, key=k("vulnerabilities"),
                   format_func=lambda code: vulnerability_labels.get(code, code))
    messages.under("vulnerabilities")
    for name in ("learning_disability_status", "autism_status"):
        field(messages, name, "code", codes=codes.DiagnosisStatus)


def risk(messages: FieldMessages) -> None:
    for name in screening.RISK_FIELDS:
        field(messages, name, "code", codes=codes.RiskLevel)
        field(messages, f"{name}_note", "area", f"{screening.label(name)}: note (required for medium or high)")


def outcome(messages: FieldMessages) -> None:
    field(messages, "outcome", "code", codes=codes.ScreeningOutcome)
    for name in screening.RECOMMENDATION_FIELDS:
        field(messages, name, "area")
    st.markdown("**Information shared** — record it only when the person consents to sharing.")
    field(messages, "shared_with", limit=200)
    field(messages, "shared_at", "when", "Shared", day="shared_on", hour="shared_time", fold="shared_fold")
    field(messages, "shared_what", "area")


if view.age is not None and view.age < screening.ADULT_AGE:
    st.session_state[k("appropriate_adult_required")] = True  # under 18: cannot be unset
section(1, screening.PERSON_AND_CONTEXT, person_and_context)
section(2, screening.CONSENT, consent)
section(3, screening.VULNERABILITIES, vulnerabilities)
section(4, screening.INSTRUMENTS, lambda messages: instrument_form.draw(prefix, messages))
section(5, screening.RISK, risk)
section(6, screening.OUTCOME, outcome)


REFERRAL_ADDED = f"screening.{screening_id}.referral_added"  # the next run blanks the referral form


def referral(messages: FieldMessages) -> None:
    if st.session_state.pop(REFERRAL_ADDED, False):
        # Set to blank before the fields are drawn, not only deleted: a deleted key left the browser
        # showing the referral just added, and sending it back with the next click, so a second
        # press of Add referral stored it again under a new submission token.
        st.session_state.update({k("referral.service"): None, k("referral.referred_on"): None,
                                 k("referral.status"): codes.ReferralStatus.MADE.value,
                                 k("referral.attendance"): None, k("referral.note"): ""})
    if referral_rows:
        st.dataframe([{"Service": row.service, "Referred on": clock.format_date(row.referred_on), "Status": row.status,
                       "Attendance": row.attendance, "Note": row.note} for row in referral_rows], hide_index=True)
    field(messages, "referral.service", "select", "Service referred to", "service", choices=service_options,
          labels=service_labels)
    field(messages, "referral.referred_on", "date", "Date referred", "referred_on")
    st.session_state.setdefault(k("referral.status"), codes.ReferralStatus.MADE.value)
    field(messages, "referral.status", "code", "Referral status", "status", codes=codes.ReferralStatus)
    field(messages, "referral.attendance", "code", "Attendance", "attendance", codes=codes.AttendanceCode)
    field(messages, "referral.note", label="Referral note", error="note")


def add_referral(name: str, messages: FieldMessages, _data) -> None:
    values = {part: st.session_state.get(k(f"referral.{part}")) for part in referrals.NewReferral.__dataclass_fields__}
    try:
        with st.spinner("Adding the referral…"), db.writing(engine) as session:
            added = referrals.add_referral(session, user, screening_id, referrals.NewReferral(**values),
                                           submission=submission_token(DRAFT))
            service_name = service_labels.get(added.service, added.service)
    except InputErrors as refused:
        messages.show(refused.errors)
    else:
        submission_done(DRAFT)
        problems.pop(screening.REFERRALS, None)
        for key in [key for key in st.session_state if str(key).startswith(k("referral."))]:
            del st.session_state[key]  # a fresh form for the next referral
        st.session_state[REFERRAL_ADDED] = True
        saved_notice(name, f"Referral to {service_name} added.")


section(7, screening.REFERRALS, referral, button="Add referral", submit=add_referral)

st.divider()
if notice := done_at(k("notice"), "complete"):  # said where the Complete button was
    st.success(notice, icon=":material/check_circle:")
if amending:
    st.page_link("pages/6_Screening_summary.py", label="Printable summary for sharing",
                 query_params={"id": str(screening_id)}, icon=":material/print:")
    with st.expander(f"Amendment history ({len(view.amendments)})", expanded=bool(view.amendments)):
        st.dataframe([{"When": clock.format_datetime(row.amended_at), "By": row.amended_by, "Reason": row.reason,
                       "Changed": what, "Before": before, "After": after}
                      for row in view.amendments for what, before, after in row.changes], hide_index=True)
    st.stop()
if problems:
    st.error("Not complete yet: put right the problems listed under each section, save it, and complete again. "
             + "; ".join(f"{screening.SECTIONS[name]}: {len(found)}" for name, found in problems.items()) + ".")
drafts.keep(engine, user, DRAFT, draft_keys(), st.session_state[k("blank")])
if st.button("Complete screening", type="primary", key=k("complete")):
    try:
        with st.spinner("Checking every section and completing…"), db.writing(engine) as session:
            screening.complete(session, user, screening_id, st.session_state[k("version")])
    except screening.CompletionRefused as refused:
        st.session_state[k("problems")] = refused.by_section
        toast_after_rerun("Not complete yet: see the problems listed under each section.", icon=":material/error:")
    except Conflict as conflict:
        st.session_state[k("conflict")] = str(conflict)
    except InputErrors as refused:  # completed elsewhere since this page was drawn
        st.session_state[k("conflict")] = " ".join(refused.errors.values())
    else:
        reload()
        say_done(k("notice"), "complete", "Screening completed.")
        toast_after_rerun("Screening completed.")
    st.rerun()
