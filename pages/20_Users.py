"""Administration of staff accounts: create, rename, disable and re-enable, change role, reset password,
and who may export (a permission of its own, off by default for administrators)."""

import streamlit as st

from models.codes import Role
from services import accounts, db, organisation
from services.errors import InputErrors
from services.permissions import Permission, has_permission
from ui.editing import attempt, creating, form_round, show_notice
from ui.format import format_datetime, plain
from ui.forms import FieldMessages
from ui.guard import app_engine, require

user = require(Permission.MANAGE_USERS, title="Users")
engine = app_engine()
st.title("Users")
show_notice()

with db.reading(engine) as session:
    people = accounts.list_users(session, user)
    teams = organisation.list_teams(session, user)
team_names = {team.id: team.name for team in teams}


def export_words(person) -> str:
    allowed = "Yes" if has_permission(person, Permission.EXPORT) else "No"
    return allowed if person.can_export is None else f"{allowed} (set for them)"


def refused(problem: InputErrors) -> None:
    st.error(plain(" ".join(problem.errors.values())), icon=":material/error:")


st.dataframe(
    [
        {
            "Username": person.username,
            "Name": person.full_name,
            "Role": Role.label_of(person.role),
            "Team": team_names.get(person.team_id, ""),
            "Active": "Yes" if person.active else "No",
            "May export": export_words(person),
            "Must change password": "Yes" if person.must_change_password else "No",
            "Last signed in": format_datetime(person.last_signed_in_at),
        }
        for person in people
    ],
    hide_index=True,
)

st.header("Create a user")
round_ = form_round("create_user")  # a fresh form after each account made
with st.form(f"create_user_{round_}"):
    messages = FieldMessages()
    username = st.text_input("Username", help=f"Up to {accounts.USERNAME_LIMIT} characters, no spaces.",
                             key=f"new_username_{round_}")
    messages.under("username")
    full_name = st.text_input("Full name", help="Up to 100 characters.", key=f"new_full_name_{round_}")
    messages.under("full_name")
    email = st.text_input("E-mail (for single sign-on; optional)", help="Up to 254 characters.",
                          key=f"new_email_{round_}")
    messages.under("email")
    role = st.selectbox("Role", Role.choices(), format_func=Role.label_of, key=f"new_role_{round_}")
    messages.under("role")
    team_id = st.selectbox("Team", list(team_names), format_func=team_names.get, key=f"new_team_{round_}")
    messages.under("team_id")
    temporary_password = st.text_input(
        "Temporary password", type="password", key=f"new_password_{round_}",
        help="12 to 128 characters; a phrase of three or four unrelated words is best. They must change it "
        "when they first sign in. Leave it empty for an account that signs in only through single sign-on "
        "(an e-mail is then required).",
    )
    messages.under("temporary_password")
    if st.form_submit_button("Create user", type="primary", key=f"create_user_submit_{round_}"):
        new = accounts.NewUser(username, full_name, role, team_id, temporary_password, email or None)
        attempt(engine, user, creating(accounts.create_user, "create_user"), new, messages=messages,
                form="create_user", done=lambda created: f"Created {created.username}. Tell them their temporary "
                                                         "password in person or by phone.")

st.header("Change an account")
by_id = {person.id: person for person in people}
chosen_id = st.selectbox(
    "Account", list(by_id), format_func=lambda person_id: f"{by_id[person_id].full_name} ({by_id[person_id].username})"
)
chosen = by_id[chosen_id]
active_column, role_column, password_column = st.columns(3)
with active_column, st.form("active"):
    label = "Disable account" if chosen.active else "Re-enable account"
    if st.form_submit_button(label):
        try:
            with db.writing(engine) as session:
                accounts.set_active(session, user, chosen.id, not chosen.active)
            st.rerun()
        except InputErrors as problem:
            refused(problem)
with role_column, st.form("role"):
    new_role = st.selectbox("New role", Role.choices(), index=Role.choices().index(chosen.role),
                            format_func=Role.label_of)
    if st.form_submit_button("Change role"):
        try:
            with db.writing(engine) as session:
                accounts.change_role(session, user, chosen.id, new_role)
            st.rerun()
        except InputErrors as problem:
            refused(problem)
with password_column, st.form("reset"):
    temporary = st.text_input("New temporary password", type="password", help="12 to 128 characters.")
    if st.form_submit_button("Reset password"):
        try:
            with db.writing(engine) as session:
                accounts.reset_password(session, user, chosen.id, temporary)
            st.success("Password reset. Their other sessions end at their next click.")
        except InputErrors as problem:
            refused(problem)

name_column, export_column = st.columns(2)
with name_column, st.form(f"rename_{chosen.id}"):
    messages = FieldMessages()
    renamed = st.text_input("Full name", value=chosen.full_name, help="Up to 100 characters.",
                            key=f"rename_name_{chosen.id}")
    messages.under("full_name")
    new_username = st.text_input("Username", value=chosen.username,
                                 help=f"Up to {accounts.USERNAME_LIMIT} characters, no spaces.",
                                 key=f"rename_username_{chosen.id}")
    messages.under("username")
    if st.form_submit_button("Save name and username"):
        try:
            with db.writing(engine) as session:
                accounts.rename_user(session, user, chosen.id, renamed, new_username)
            st.rerun()
        except InputErrors as problem:
            messages.show(problem.errors)
with export_column, st.form(f"export_{chosen.id}"):
    choices = list(accounts.EXPORT_CHOICES)
    can_export = st.radio("May export", choices, index=choices.index(chosen.can_export),
                          format_func=accounts.EXPORT_CHOICES.get, key=f"export_choice_{chosen.id}",
                          help="Exports hold people's names, dates of birth and risk in a file that leaves the "
                          "app. Another administrator must change your own.")
    if st.form_submit_button("Save export permission"):
        try:
            with db.writing(engine) as session:
                accounts.set_export_permission(session, user, chosen.id, can_export)
            st.rerun()
        except InputErrors as problem:
            refused(problem)
