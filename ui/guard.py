"""The guard every page calls first: sign-in, idle time-out, forced password change, permission.

It is convenience and a first line only: every service call checks permission again on the server.
"""

import streamlit as st
from sqlalchemy import Engine

from models import Team, User
from services import accounts, audit, clock, db
from services.config import load_config
from services.errors import InputErrors, SignInRefused
from services.permissions import Permission, has_permission
from ui import nav

SIGNED_IN = "signed_in"
LAST_ACTIVITY = "last_activity"
NOTICE = "notice"
DEMO_NOTICE = (
    "**Demo data** — every person and record here is invented. Do not enter real patient "
    "information in a demonstration system."
)


@st.cache_resource(show_spinner=False)
def _checked_engine(url: str) -> Engine:
    """Created once per process; refuses to start on an unreachable database or unknown roles."""
    engine = db.engine_for(url)
    db.check_connection(engine)
    with db.reading(engine) as session:
        accounts.check_roles(session)
    return engine


def app_engine() -> Engine:
    try:
        return _checked_engine(load_config().database_url)
    except (db.DatabaseUnavailable, accounts.UnknownRoleInDatabase) as problem:
        st.error(f"The app cannot start: {problem}")
        st.stop()


def require(permission: Permission, *, title: str, sign_in_form: bool = False) -> User:
    """Return the signed-in user allowed `permission`, or draw a prompt or refusal and stop."""
    st.set_page_config(page_title=f"{title} · L&D hub", page_icon=":material/diversity_3:", layout="wide")
    if load_config().demo:
        st.warning(DEMO_NOTICE, icon=":material/science:")
    engine = app_engine()
    user = _current_user(engine)
    if user is None:
        _show_notice()
        if sign_in_form:
            _sign_in_form(engine)
        else:
            st.info("Please sign in to use the Liaison and Diversion hub.")
            st.page_link("app.py", label="Go to sign-in", icon=":material/login:")
        st.stop()
    if user.must_change_password:
        _change_password_form(engine, user)
        st.stop()
    nav.draw_sidebar(user, _team_name(engine, user), on_sign_out=sign_out)
    if not has_permission(user, permission):
        _record_refusal(engine, user, title)
        st.error("You do not have permission to open this page. Ask an administrator if you need it.")
        st.stop()
    return user


def _current_user(engine: Engine) -> User | None:
    signed_in = st.session_state.get(SIGNED_IN)
    if signed_in is None:
        return None
    with db.reading(engine) as session:
        user = accounts.current_user(session, signed_in, st.session_state.get(LAST_ACTIVITY))
    if user is None:
        st.session_state.clear()
        st.session_state[NOTICE] = "You have been signed out. Please sign in again."
        return None
    st.session_state[LAST_ACTIVITY] = clock.now()
    return user


def _team_name(engine: Engine, user: User) -> str:
    with db.reading(engine) as session:
        team = session.get(Team, user.team_id)
    return team.name if team else ""


def _show_notice() -> None:
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.info(notice)


def _sign_in_form(engine: Engine) -> None:
    st.title("Liaison and Diversion hub")
    with st.form("sign_in"):
        username = st.text_input("Username", max_chars=accounts.USERNAME_LIMIT, autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    try:
        with db.writing(engine) as session:
            signed_in = accounts.sign_in(session, username, password)
    except SignInRefused as refusal:
        st.error(str(refusal))
        return
    st.session_state[SIGNED_IN] = signed_in
    st.session_state[LAST_ACTIVITY] = clock.now()
    st.rerun()


def _change_password_form(engine: Engine, user: User) -> None:
    st.title("Choose a new password")
    st.info("Your password was set by an administrator. Choose your own before you continue.")
    with st.form("change_password"):
        current = st.text_input("Current password", type="password")
        new = st.text_input("New password", type="password", help="At least 8 characters; a phrase is best.")
        confirm = st.text_input("Confirm new password", type="password")
        submitted = st.form_submit_button("Change password", type="primary")
    st.button("Sign out", on_click=sign_out, key="sign_out_before_change")
    if not submitted:
        return
    if new != confirm:
        st.error("The new password and its confirmation differ; type them again.")
        return
    try:
        with db.writing(engine) as session:
            accounts.change_own_password(session, user, current, new)
    except InputErrors as problems:
        for message in problems.errors.values():
            st.error(message)
        return
    st.session_state[NOTICE] = "Password changed."
    st.rerun()


def _record_refusal(engine: Engine, user: User, title: str) -> None:
    with db.writing(engine) as session:
        audit.record(session, user, "open_page", entity="page", outcome=audit.DENIED, detail=title)


def sign_out() -> None:
    st.session_state.clear()
    st.session_state[NOTICE] = "You have signed out."
