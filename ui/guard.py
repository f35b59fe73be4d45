"""The guard every page calls first: sign-in, idle time-out, forced password change, permission.

It is convenience and a first line only: every service call checks permission again on the server.

It also signs people in through the organisation's identity provider when `.streamlit/secrets.toml`
has an `[auth]` section (`st.login`, OpenID Connect), and makes a database that goes away
mid-page show a plain message instead of an error (docs/security.md).
"""

import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import monotonic, sleep

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from streamlit.errors import StreamlitAuthError
from streamlit.runtime.scriptrunner import get_script_run_ctx

from models import User
from services import accounts, audit, clock, db, settings, sign_in_sessions
from services.config import load_config
from services.errors import InputErrors, SignInRefused
from services.permissions import Permission, has_permission
from ui import nav, session_keeper
from ui.editing import show_pending_toast
from ui.format import plain

log = logging.getLogger("ldhub.guard")

SIGNED_IN = "signed_in"
SESSION_TOKEN = "session_token"  # noqa: S105 (a state key, not a secret); this tab's signed-in session (services/sign_in_sessions.py)
LAST_ACTIVITY = "last_activity"
NOTICE = "notice"
TAB_ASKED = "session_keeper_asked"  # the tab has said whether it kept a session token
TAB_WAIT_SECONDS = 3
TAB_WAIT_STEP_SECONDS = 0.1
FORGET_TOKEN = "session_keeper_forget"  # noqa: S105 (a state key); signed out: the tab's token is to be removed
# Served by the app itself: a Material icon as page_icon made every browser fetch it from Google.
FAVICON = str(Path(__file__).with_name("favicon.png"))
IDLE_CHECK_SECONDS = 30  # how soon after the idle time-out an untouched screen clears itself
# The organisation identity last refused in this browser session, so that a refusal is audited
# once rather than at every rerun, and its message.
SSO_REFUSED = "sso_refused"
SSO_MESSAGE = "sso_message"
SSO_BUTTON = "Sign in with your organisation account"
SSO_SIGN_OUT_BUTTON = "Sign out of your organisation account"
SSO_EXPIRED = "Your organisation sign-in has expired. Sign in again to continue."
DATABASE_UNREACHABLE = (
    "The database could not be reached, so this page could not be shown in full. Try again in a "
    "minute; if you were saving something, check whether it was saved before entering it again. "
    "If this keeps happening, tell your administrator."
)
TRY_AGAIN = "Try again"
KEPT_THROUGH_OUTAGE = "kept_through_outage"  # what the fields held when the database went away
DEMO_NOTICE = (
    "**Demo data** — every person and record here is invented. Do not enter real patient "
    "information in a demonstration system."
)


CANNOT_START = ("The app cannot start: it cannot use its database. Whoever runs the service will find the "
                "reason in the app's log.")


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
        # The reason names the database's address, user and settings: for the server's log, never
        # for a screen that anyone who reaches the sign-in page can read.
        log.error("The app cannot start: %s", problem)
        st.error(CANNOT_START)
        st.button(TRY_AGAIN, key="database_try_again", icon=":material/refresh:")  # the database may be starting
        st.stop()


def require(permission: Permission, *, title: str) -> User:
    """Return the signed-in user allowed `permission`, or draw the sign-in form or a refusal and stop.

    The sign-in form is drawn on whichever page was asked for, so a shared link (with its filters
    in the address) opens where it points once the person has signed in.
    """
    st.set_page_config(page_title=f"{title} · L&D hub", page_icon=FAVICON, layout="wide")
    _show_database_errors_kindly()
    _show_typing_kept_through_an_outage()
    if load_config().demo:
        st.warning(DEMO_NOTICE, icon=":material/science:")
    engine = app_engine()
    found = _current_user(engine)
    user = found.user
    if user is None:
        _tell_the_tab()
        if not st.session_state.get(TAB_ASKED):
            _wait_for_the_tab()
        _show_notice()
        _sign_in_form(engine)
        st.stop()
    session_keeper.draw(session_keeper.keep(st.session_state[SESSION_TOKEN]))
    _clear_when_idle()
    if user.must_change_password:
        _change_password_form(engine, user)
        st.stop()
    nav.draw_sidebar(user, found.team_name, on_sign_out=sign_out)
    show_pending_toast()  # a save's toast, drawn after its rerun (ui/editing.py)
    if not has_permission(user, permission):
        _record_refusal(engine, user, title)
        st.error("You do not have permission to open this page. Ask an administrator if you need it.")
        st.stop()
    return user


# --- A database that goes away mid-page --------------------------------------------------------

DATABASE_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError, db.DatabaseUnavailable)


def is_database_unreachable(error: BaseException) -> bool:
    # A bare DatabaseError is what SQLite raises for a damaged or replaced file; its subclasses
    # (IntegrityError, DataError…) are the app's own mistakes and keep Streamlit's generic message.
    return isinstance(error, DATABASE_ERRORS) or type(error) is DatabaseError


def _show_database_errors_kindly() -> None:
    """Make any page that hits an unreachable database show DATABASE_UNREACHABLE, not an error.

    Streamlit calls the script run's `on_script_error` handler with every uncaught exception after
    logging it (with its traceback, in the server log only); a handler returning True replaces
    Streamlit's own error display. Installing it here, in the guard every page calls first, covers
    every page without a change to any of them. Other exceptions still reach Streamlit's own
    handling, which `client.showErrorDetails = "none"` keeps free of detail.
    """
    context = get_script_run_ctx()
    if context is None or getattr(context.on_script_error, "ldhub_database_errors", False):
        return
    previous = context.on_script_error

    def on_script_error(error: Exception) -> bool | None:
        if is_database_unreachable(error):
            log.error("database unreachable during a page run: %s", type(error).__name__)
            st.error(DATABASE_UNREACHABLE, icon=":material/cloud_off:")
            # The run stopped before the page drew its links, so without this the only way on would
            # be the browser's refresh, which starts a new session and drops what was typed. A rerun
            # keeps it: widget values stay in the session when a run ends with an error.
            st.button(TRY_AGAIN, key="database_try_again", icon=":material/refresh:")
            st.session_state[KEPT_THROUGH_OUTAGE] = {
                key: value for key, value in st.session_state.to_dict().items() if _can_be_put_back(key, value)}
            return True
        return previous(error) if previous is not None else None

    on_script_error.ldhub_database_errors = True
    context.on_script_error = on_script_error


def _can_be_put_back(key: str, value: object) -> bool:
    """A value a field holds that may be given back to it: text, numbers, dates and times, and lists of
    them. Not True or False: a button's state looks the same as a checkbox's, and Streamlit refuses
    any value given to a button."""
    if key == KEPT_THROUGH_OUTAGE or key.startswith("$$"):
        return False
    values = value if isinstance(value, list | tuple) else [value]
    return all(isinstance(item, str | int | float | date | time) and not isinstance(item, bool) for item in values)


def _show_typing_kept_through_an_outage() -> None:
    """After a run that the database stopped, give each field back what it held, so the browser shows it.

    The fields' values stay in the session through the failed run, but the browser dropped the
    fields, and with them what it showed: a field drawn again shows its value only when the value is
    given to it through the session state (before the field is drawn, so here, first thing).
    """
    for key, value in st.session_state.pop(KEPT_THROUGH_OUTAGE, {}).items():
        st.session_state[key] = value


# --- Who is signed in -------------------------------------------------------------------------


def _current_user(engine: Engine) -> sign_in_sessions.Check:
    """The user this tab is signed in as (None when there is none), checked on the server at every
    click, with their team's name and the idle time-out: one reading transaction for the guard."""
    token = st.session_state.get(SESSION_TOKEN)
    if token is None and not (_resume(engine) or _single_sign_on(engine)):
        return sign_in_sessions.Check(None)
    with db.reading(engine) as session:
        found = sign_in_sessions.check(session, st.session_state[SESSION_TOKEN], st.session_state.get(LAST_ACTIVITY))
    if found.touch or found.ended:
        with db.writing(engine) as session:
            sign_in_sessions.note(session, found)
    if found.user is None:
        _end_this_tab("You have been signed out. Please sign in again.")
        return found
    st.session_state[LAST_ACTIVITY] = clock.now()
    return found


def _start_session(session, signed_in: accounts.SignedIn) -> None:
    """A sign-in succeeded (in `session`'s transaction): this tab holds its session from now on."""
    st.session_state[SESSION_TOKEN] = sign_in_sessions.start(session, signed_in)
    st.session_state[SIGNED_IN] = signed_in
    st.session_state[LAST_ACTIVITY] = clock.now()


def _resume(engine: Engine) -> bool:
    """A new browser session (a refresh): take up the sign-in the tab kept, if it is still good.

    The tab answers by rerunning the page, so the first run of a refreshed tab draws the sign-in
    form and the next one, a moment later, the page itself.
    """
    if st.session_state.get(TAB_ASKED):
        return False
    token = session_keeper.answer()
    if token is None:
        return False  # not answered yet: _tell_the_tab asks
    st.session_state[TAB_ASKED] = True
    if not token:
        return False
    with db.writing(engine) as session:
        resumed = sign_in_sessions.resume(session, token)
    if resumed is None:
        st.session_state[FORGET_TOKEN] = True
        st.session_state[NOTICE] = "Your session has ended. Please sign in again."
        return False
    st.session_state[SESSION_TOKEN] = resumed.token
    st.session_state[SIGNED_IN] = resumed.signed_in
    st.session_state[LAST_ACTIVITY] = clock.now()
    return True


def _tell_the_tab() -> None:
    """Signed out: ask the tab for a token it kept (a refresh), or tell it to forget a spent one."""
    if st.session_state.pop(FORGET_TOKEN, False):
        session_keeper.draw(session_keeper.forget())
    elif not st.session_state.get(TAB_ASKED):
        session_keeper.draw(session_keeper.ask())


def _wait_for_the_tab() -> None:
    """Until the tab has said whether it kept a sign-in (its answer reruns the page within a moment),
    no sign-in form: one drawn now would be redrawn under the person's first click, which it lost.

    The wait is this run itself: each redrawing of the caption is a point where Streamlit stops the
    run for the tab's answer. (A fragment that ticked every second was tried first: after the form
    appeared, a last tick of it could land on the form's place and blank it, seen under load.)
    Should the tab not answer within TAB_WAIT_SECONDS (its script blocked, a busy machine), the form
    is drawn after all.
    """
    waiting = st.empty()
    give_up_at = monotonic() + TAB_WAIT_SECONDS
    while monotonic() < give_up_at:
        waiting.caption("Checking your sign-in…")
        sleep(TAB_WAIT_STEP_SECONDS)
    waiting.empty()
    st.session_state[TAB_ASKED] = True


def _end_this_tab(notice: str) -> None:
    """Forget everything this tab held (screen, choices, typed text) and its stored token."""
    st.session_state.clear()
    st.session_state[TAB_ASKED] = True  # its token is spent: asking again would find nothing good
    st.session_state[FORGET_TOKEN] = True
    st.session_state[NOTICE] = notice


def _clear_when_idle() -> None:
    """Redraw the whole page when the idle time-out has passed, even with nobody touching it.

    A fragment rerunning on a timer runs only itself, not the guard, so it does not count as
    activity; once the time-out has passed it reruns the page, whose guard then signs the tab out
    and leaves only the sign-in form on screen (a shared custody-suite PC shows no record to the
    next person).
    """

    @st.fragment(run_every=IDLE_CHECK_SECONDS)
    def idle_watch() -> None:
        last = st.session_state.get(LAST_ACTIVITY)
        with db.reading(app_engine()) as session:
            idle_limit = timedelta(minutes=settings.get_int(session, "idle_timeout_minutes"))
        if last is None or clock.now() - last > idle_limit:
            st.rerun(scope="app")

    with st.sidebar:
        idle_watch()


def _single_sign_on_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all (Streamlit's error subclasses this)
        return False


def _organisation_identity() -> tuple[str | None, datetime | None] | None:
    """The e-mail and sign-in time the identity provider vouches for, or None when none does."""
    if not _single_sign_on_configured() or not st.user.get("is_logged_in"):
        return None
    issued_at = st.user.get("iat")
    try:
        authenticated_at = datetime.fromtimestamp(int(issued_at), UTC) if issued_at is not None else None
    except (TypeError, ValueError, OverflowError):
        authenticated_at = None
    email = st.user.get("email")
    return (str(email) if email else None), authenticated_at


def _single_sign_on(engine: Engine) -> bool:
    """Start a session from the organisation's sign-in, when there is a recent one we have not refused."""
    identity = _organisation_identity()
    if identity is None or st.session_state.get(SSO_REFUSED) == identity:
        return False
    email, authenticated_at = identity
    with db.reading(engine) as session:
        recent = accounts.sso_identity_is_recent(session, authenticated_at)
    if not recent:
        st.session_state[SSO_REFUSED] = identity  # asked once per browser session, not every rerun
        st.session_state[NOTICE] = SSO_EXPIRED
        return False
    try:
        with db.writing(engine) as session:
            _start_session(session, accounts.sign_in_with_email(session, email))
    except SignInRefused as refusal:  # audited, and committed, by the service
        st.session_state[SSO_REFUSED] = identity
        st.session_state[SSO_MESSAGE] = str(refusal)
        return False
    st.session_state.pop(SSO_REFUSED, None)
    st.session_state.pop(SSO_MESSAGE, None)
    return True


def _show_notice() -> None:
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.info(notice)


def _sign_in_form(engine: Engine) -> None:
    st.title("Liaison and Diversion hub")
    if _single_sign_on_configured():
        _single_sign_on_buttons()
    with st.form("sign_in"):
        username = st.text_input("Username", max_chars=accounts.USERNAME_LIMIT, autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    try:
        with db.writing(engine) as session:
            _start_session(session, accounts.sign_in(session, username, password))
    except SignInRefused as refusal:
        st.error(str(refusal))
        return
    st.rerun()


def _single_sign_on_buttons() -> None:
    refused = st.session_state.get(SSO_MESSAGE)
    if refused and st.user.get("is_logged_in"):
        st.error(refused)
        # Their organisation sign-in stands until they end it; this lets them use another account.
        st.button(SSO_SIGN_OUT_BUTTON, on_click=st.logout, key="sso_sign_out")
    if st.button(SSO_BUTTON, type="primary", icon=":material/badge:", key="sso_sign_in"):
        try:
            st.login()  # to the identity provider and back; the next session maps the e-mail
        except StreamlitAuthError as problem:
            log.error("single sign-on is misconfigured: %s", problem)
            st.error("Single sign-on is not set up correctly on this server. Tell your administrator, "
                     "and sign in with a hub account meanwhile if you have one.")
    st.caption("Or sign in with a hub account:")


def _change_password_form(engine: Engine, user: User) -> None:
    st.title("Choose a new password")
    st.info("Your password was set by an administrator. Choose your own before you continue.")
    with st.form("change_password"):
        current = st.text_input("Current password", type="password")
        new = st.text_input("New password", type="password",
                            help="12 to 128 characters; a phrase of three or four unrelated words is best.")
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
            signed_in = accounts.change_own_password(session, user, current, new)
            # The change ends every other session; this tab carries on under the new one.
            st.session_state[SESSION_TOKEN] = sign_in_sessions.renew(session, st.session_state[SESSION_TOKEN],
                                                                     signed_in)
            st.session_state[SIGNED_IN] = signed_in
    except (InputErrors, SignInRefused) as problems:
        for message in (problems.errors.values() if isinstance(problems, InputErrors) else [str(problems)]):
            st.error(plain(message))
        return
    st.session_state[NOTICE] = "Password changed."
    st.rerun()


def _record_refusal(engine: Engine, user: User, title: str) -> None:
    with db.writing(engine) as session:
        audit.record(session, user, "open_page", entity="page", outcome=audit.DENIED, detail=title)


def sign_out() -> None:
    """End every session of this user (every tab, every app process), then this tab's screen."""
    signed_in = st.session_state.get(SIGNED_IN)
    if signed_in is not None:
        with db.writing(app_engine()) as session:
            sign_in_sessions.end_all(session, signed_in.user_id)
    _end_this_tab("You have signed out.")
    if getattr(signed_in, "single_sign_on", False):
        st.logout()  # ends the organisation sign-in too, or the next page would sign them straight back in
