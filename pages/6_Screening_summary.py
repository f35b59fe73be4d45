"""A completed screening's summary for sharing: recommendations, and only what consent to share allows."""

import streamlit as st

from services import clock, db, screening
from services.errors import ServiceError
from services.permissions import Permission
from ui.guard import app_engine, require
from ui.record_id import record_id_from_query

MARKING = "OFFICIAL-SENSITIVE — contains personal data"
PRINT_STYLE = """<style>
@media print {
  [data-testid="stSidebar"], [data-testid="stHeader"], [data-testid="stToolbar"], .stButton {
    display: none !important;
  }
}
</style>"""

user = require(Permission.SCREEN, title="Screening summary")
engine = app_engine()
screening_id = record_id_from_query("id")
if screening_id is None:
    st.info("Open the summary from a completed screening.")
    st.stop()
try:
    with db.writing(engine) as session:  # opening the summary is audited
        summary = screening.sharing_summary(session, user, screening_id)
except ServiceError as problem:
    st.error(str(problem))
    st.stop()

st.html(PRINT_STYLE)  # fixed styling only: no user data
st.markdown(f"**{MARKING}**")
st.title("Liaison and Diversion screening summary")
if not summary.complete:
    st.warning("This screening is still a draft. Complete it before sharing a summary.")
    st.stop()

st.header("Person")
st.text(f"{summary.person_name}\nDate of birth: {clock.format_date(summary.date_of_birth) or 'not recorded'}")
st.text(f"Screened {clock.format_datetime(summary.screened_at)} at {summary.site_name} by {summary.practitioner_name}")
st.text(f"Appropriate adult required: {'Yes' if summary.appropriate_adult_required else 'No'}")

st.header("Recommendations to custody or court")
if summary.recommendations:
    for label, text in summary.recommendations:
        st.markdown(f"**{label}**")
        st.text(text)
else:
    st.text("No recommendations recorded.")

if not summary.consent_to_share:
    st.info("The person has not consented to sharing information with police, court or probation, so no health "
            "information is included in this summary.")
else:
    st.header("Information shared with consent")
    st.text(f"Outcome: {summary.outcome}")
    st.text("Vulnerabilities identified: " + (", ".join(summary.vulnerabilities) or "none"))
    for label, level in summary.risks:
        st.text(f"{label}: {level}")
    if summary.instrument_results:
        st.dataframe([{"Instrument": name, "Result": result} for name, result in summary.instrument_results],
                     hide_index=True)
    if summary.referrals:
        st.dataframe([{"Onward referral": service, "Referred on": clock.format_date(on), "Status": status}
                      for service, on, status in summary.referrals], hide_index=True)
    if summary.shared:
        shared_with, shared_at, shared_what = summary.shared
        st.text(f"Shared with {shared_with} on {clock.format_datetime(shared_at)}: {shared_what}")

st.caption("Print this page from the browser (Ctrl+P). Share it only with the people named in the consent.")
st.markdown(f"**{MARKING}**")
