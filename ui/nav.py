"""The sidebar: each user sees links to the pages their role may open, and nothing else."""

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from models import User
from models.codes import Role
from services.permissions import Permission, has_permission

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class NavEntry:
    path: str
    label: str
    icon: str
    permission: Permission
    in_sidebar: bool = True  # pages about one record are reached from a list, not the sidebar


PAGES: tuple[NavEntry, ...] = (
    NavEntry("app.py", "My work", ":material/home:", Permission.VIEW_HOME),
    NavEntry("pages/1_Triage_queue.py", "Triage queue", ":material/inbox:", Permission.VIEW_REQUESTS),
    NavEntry("pages/2_Log_request.py", "Log a request", ":material/add_call:", Permission.LOG_REQUEST),
    NavEntry("pages/3_Request.py", "Request", ":material/description:", Permission.VIEW_REQUESTS, in_sidebar=False),
    NavEntry("pages/4_People.py", "People", ":material/group:", Permission.VIEW_PEOPLE),
    NavEntry("pages/5_Screening.py", "Screening", ":material/assignment:", Permission.SCREEN),
    NavEntry("pages/6_Screening_summary.py", "Screening summary", ":material/print:", Permission.SCREEN,
             in_sidebar=False),
    NavEntry("pages/7_Caseload.py", "Caseload", ":material/bar_chart:", Permission.VIEW_CASELOAD),
    NavEntry("pages/8_Activities.py", "Activities", ":material/event:", Permission.VIEW_ACTIVITIES),
    NavEntry("pages/9_Export.py", "Export", ":material/download:", Permission.EXPORT),
    NavEntry("pages/20_Users.py", "Users", ":material/manage_accounts:", Permission.MANAGE_USERS),
    NavEntry("pages/21_Service_settings.py", "Service settings", ":material/settings:", Permission.MANAGE_SERVICE),
    NavEntry("pages/22_Audit_log.py", "Audit log", ":material/policy:", Permission.VIEW_AUDIT),
    NavEntry("pages/23_Retention.py", "Retention review", ":material/auto_delete:", Permission.REVIEW_RETENTION),
    NavEntry("pages/24_My_account.py", "My account", ":material/account_circle:", Permission.VIEW_HOME),
)


def visible_pages(user: User) -> list[NavEntry]:
    # A page file that is not in this checkout (a feature not yet built) is simply not listed.
    return [entry for entry in PAGES if entry.in_sidebar and has_permission(user, entry.permission)
            and (ROOT / entry.path).exists()]


def draw_sidebar(user: User, team_name: str, on_sign_out) -> None:
    with st.sidebar:
        for entry in visible_pages(user):
            st.page_link(entry.path, label=entry.label, icon=entry.icon)
        st.divider()
        # Names are typed by people (administrators too): plain text, never markdown.
        st.text(f"Signed in as {user.full_name} · {Role.label_of(user.role)} · {team_name}")
        st.button("Sign out", on_click=on_sign_out, key="sign_out")
