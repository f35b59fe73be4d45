"""My account: who you are signed in as, and changing your own password.

Changing it needs the current password and ends every session of the account (services/accounts.py:
change_own_password moves the session epoch on); this tab then signs in again with the new one.
"""

import streamlit as st

from models.codes import Role
from services import accounts, db, organisation, passwords
from services.errors import InputErrors
from services.permissions import Permission, has_permission
from ui import guard
from ui.format import format_datetime
from ui.forms import FieldMessages
from ui.guard import app_engine, require

user = require(Permission.VIEW_HOME, title="My account")
engine = app_engine()
st.title("My account")

with db.reading(engine) as session:
    team = next((team.name for team in organisation.list_teams(session, user) if team.id == user.team_id), "")
st.text("\n".join([  # st.text: names are shown as typed, never as markdown
    f"Name: {user.full_name}",
    f"Username: {user.username}",
    f"Role: {Role.label_of(user.role)}",
    f"Team: {team}",
    f"E-mail (for single sign-on): {user.email or 'none'}",
    f"May export: {'Yes' if has_permission(user, Permission.EXPORT) else 'No'}",
    f"Last signed in: {format_datetime(user.last_signed_in_at) or 'not recorded'}",
]))

st.header("Change your password")
if user.password_hash is None:
    st.info("You sign in with your organisation account, so your password is changed there, not here.")
    st.stop()
st.caption(f"{passwords.MINIMUM_LENGTH} to {passwords.MAXIMUM_LENGTH} characters, any characters you like. "
           "A phrase of three or four unrelated words is long enough and easy to remember. Common passwords, "
           "your username and the service's name are refused. Every other place you are signed in is signed "
           "out, and you sign in again here with the new password.")
with st.form("change_own_password", clear_on_submit=False):
    messages = FieldMessages()
    current = st.text_input("Current password", type="password", autocomplete="current-password")
    messages.under("current_password")
    new = st.text_input("New password", type="password", autocomplete="new-password")  # no max_chars: never cut
    messages.under("new_password")
    confirm = st.text_input("Confirm new password", type="password", autocomplete="new-password")
    messages.under("confirm_password")
    submitted = st.form_submit_button("Change password", type="primary")

if submitted:
    if new != confirm:
        messages.show({"confirm_password": "The new password and its confirmation differ; type them again."})
    else:
        try:
            with db.writing(engine) as session:
                accounts.change_own_password(session, user, current, new)
        except InputErrors as refused:
            messages.show(refused.errors)
        else:
            guard.sign_out()  # this tab too: every session of the account has ended
            st.session_state[guard.NOTICE] = "Password changed. Sign in with your new password."
            st.rerun()
