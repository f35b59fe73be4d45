"""Activities: MAPPA meetings, training delivered, pre-sentence report information, prison release.

Practitioners and team leads log and edit their team's activities; a list per kind with filters.
A record opened by its link (?id=…) is checked against the user's team on the server.

The kind shown is a keyed tab bound to the address (?tab=…): it stays chosen through a save's
rerun and a reload, and only the chosen kind's list and form are drawn.
"""

import streamlit as st

from models.codes import ActivityKind
from services import activities, db, export_lists
from services.permissions import Permission, has_permission
from ui import activity_forms
from ui.editing import show_notice
from ui.export_button import export_button
from ui.guard import app_engine, require
from ui.record_id import record_id_from_query

user = require(Permission.VIEW_ACTIVITIES, title="Activities")
engine = app_engine()
st.title("Activities")
show_notice()
can_log = has_permission(user, Permission.LOG_ACTIVITY)

if "id" in st.query_params:  # one record, opened by its link
    activity_forms.linked_record(engine, user, record_id_from_query("id"), can_log)
    st.stop()

with db.reading(engine) as session:
    practitioners = activities.team_practitioners(session, user)

tabs = st.tabs([kind.label for kind in ActivityKind], key=activity_forms.TAB, bind="query-params")
for kind, tab in zip(ActivityKind, tabs, strict=True):
    if not tab.open:
        continue
    with tab:
        filters = activity_forms.filter_bar(kind, practitioners)
        with st.spinner("Finding activities…"), db.reading(engine) as session:
            listed = activities.list_activities(session, user, kind, filters)
        activity_forms.show_list(listed)
        export_button(user, export_lists.activity_list_name(kind), filters, key=f"{kind}_export")
        if can_log:
            st.header("Log or edit")
            activity_forms.record_editor(engine, user, kind, listed.rows)
