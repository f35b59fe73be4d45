"""Staff accounts: sign-in with lockout, sessions, changing one's own password, and administration
of users (create, rename, disable, role, password reset, export permission).

Rules:
- every name and username is checked by the same validators as any other typed text
  (`models/validators.py`): control characters and over-long values are refused, nothing written;
- changing a password (one's own, or a reset by an administrator) and disabling an account move
  the account's `session_epoch` on, which ends every other signed-in session at its next click;
- export is a permission of its own (`services/permissions.py`): an administrator grants or
  withdraws it per person here, never for their own account.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, func, select

from models import Team, User
from models import validators as check
from models.codes import Role
from services import audit, clock, db, passwords, settings, submissions
from services.errors import InputErrors, NotFound, SignInRefused
from services.permissions import Permission, require

MAX_FAILED_SIGN_INS = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
SIGN_IN_REFUSED = "Username or password is not right, or the account cannot sign in now."
USERNAME_LIMIT = check.USERNAME_LIMIT


class UnknownRoleInDatabase(RuntimeError):
    pass


SINGLE_SIGN_ON = "single sign-on"


@dataclass(frozen=True)
class SignedIn:
    """What a browser session keeps: the user's id and the session epoch it signed in under.

    `single_sign_on` says the organisation's identity provider signed them in, so that signing
    out also ends that sign-in (`st.logout`).
    """

    user_id: int
    session_epoch: int
    single_sign_on: bool = False


def _find_by_username(session: Session, username: str, *, for_update: bool = False) -> User | None:
    query = select(User).where(func.lower(User.username) == username.strip().lower())
    return session.exec(query.with_for_update() if for_update else query).first()


def sign_in(session: Session, username: str, password: str) -> SignedIn:
    """Check a username and password. The refusal is the same whatever the reason.

    Failures are counted on the user row, so a new browser tab or a second browser does not
    reset them: 5 failures within 15 minutes lock the account for 15 minutes.
    """
    db.require_writing(session)
    now = clock.now()
    # The row is locked until this attempt commits (PostgreSQL; SQLite's write transaction already
    # excludes others): attempts made at once, on one app process or several, are counted one
    # after another. Without it the versioned row let one count and refused the others' saves with
    # an error, uncounted.
    user = _find_by_username(session, username, for_update=True) if username.strip() else None
    if user is None:
        passwords.spend_verification_time(password)
        audit.record(session, None, "sign_in", outcome=audit.FAILURE, username=username.strip()[:64])
        raise SignInRefused(SIGN_IN_REFUSED)
    if user.locked_until and user.locked_until > now:
        passwords.spend_verification_time(password)
        audit.record(session, user, "sign_in", entity="user", entity_id=user.id, outcome=audit.FAILURE,
                     detail="locked")
        raise SignInRefused(SIGN_IN_REFUSED)
    if not passwords.verify_password(user.password_hash, password) or not user.active:
        _count_failure(session, user, now)
        raise SignInRefused(SIGN_IN_REFUSED)
    user.failed_sign_ins = 0
    user.first_failed_sign_in_at = None
    user.locked_until = None
    user.last_signed_in_at = now
    session.add(user)
    audit.record(session, user, "sign_in", entity="user", entity_id=user.id)
    return SignedIn(user_id=user.id, session_epoch=user.session_epoch)


def sso_refusal_message(email: str) -> str:
    return (
        f"Your organisation account ({email}) cannot sign in to the hub: no active account here "
        "has this e-mail address. Ask an administrator to add the address to your account, or to "
        "re-enable it."
    )


def sign_in_with_email(session: Session, email: str | None) -> SignedIn:
    """Sign in someone the organisation's identity provider has authenticated (OpenID Connect).

    The provider vouches for the e-mail address; this maps it, ignoring case, to an active User,
    whose role then decides what they may do. An unknown or disabled address is refused and the
    refusal audited. The password lockout does not apply: it guards the local password, which
    this sign-in does not use, and honouring it would let anyone lock an SSO user out by typing
    wrong passwords against their username.
    """
    db.require_writing(session)
    address = (email or "").strip()
    user = None
    if address:
        user = session.exec(select(User).where(func.lower(User.email) == address.lower())).first()
    if user is None or not user.active:
        reason = "no account with this e-mail" if user is None else "inactive account"
        audit.record(session, user, "sign_in", entity="user" if user else None, entity_id=user.id if user else None,
                     outcome=audit.FAILURE, detail=f"{SINGLE_SIGN_ON}: {reason}",
                     username=None if user else address[:USERNAME_LIMIT])
        if not address:
            raise SignInRefused("Your organisation account did not tell the hub your e-mail address. "
                                "Ask your administrator to check the single sign-on set-up.")
        raise SignInRefused(sso_refusal_message(address))
    user.last_signed_in_at = clock.now()
    session.add(user)
    audit.record(session, user, "sign_in", entity="user", entity_id=user.id, detail=SINGLE_SIGN_ON)
    return SignedIn(user_id=user.id, session_epoch=user.session_epoch, single_sign_on=True)


def sso_identity_is_recent(session: Session, authenticated_at: datetime | None) -> bool:
    """Whether the identity provider's sign-in is recent enough to start a session on its word.

    The provider's sign-in lives in a browser cookie for weeks; without this, a new tab opened
    long after the last one went idle would sign straight in and the idle time-out would mean
    nothing. So a new session starts from it only within the idle time-out of the provider's
    sign-in (the ID token's `iat`); otherwise the person signs in at the provider again.
    """
    if authenticated_at is None:
        return False
    idle_limit = timedelta(minutes=settings.get_int(session, "idle_timeout_minutes"))
    return clock.now() - authenticated_at <= idle_limit


def _count_failure(session: Session, user: User, now: datetime, action: str = "sign_in") -> None:
    window_started = user.first_failed_sign_in_at
    if window_started is None or now - window_started > FAILURE_WINDOW:
        user.first_failed_sign_in_at = now
        user.failed_sign_ins = 1
    else:
        user.failed_sign_ins += 1
    detail = "inactive account" if not user.active else "wrong password"
    audit.record(session, user, action, entity="user", entity_id=user.id, outcome=audit.FAILURE,
                 detail=detail)
    if user.failed_sign_ins >= MAX_FAILED_SIGN_INS:
        user.locked_until = now + LOCKOUT
        user.failed_sign_ins = 0
        user.first_failed_sign_in_at = None
        audit.record(session, user, "lockout", entity="user", entity_id=user.id,
                     detail=f"locked until {clock.format_datetime(user.locked_until)}")
    session.add(user)


def current_user(session: Session, signed_in: SignedIn | None, last_activity: datetime | None) -> User | None:
    """The user behind a browser session, or None when it must sign in again.

    None when: never signed in; the account was disabled; its password was reset or it was
    disabled since (the epoch moved on); or it was idle longer than the idle time-out.
    """
    if signed_in is None:
        return None
    user = session.get(User, signed_in.user_id)
    if user is None or not user.active or user.session_epoch != signed_in.session_epoch:
        return None
    if last_activity is not None:
        idle_limit = timedelta(minutes=settings.get_int(session, "idle_timeout_minutes"))
        if clock.now() - last_activity > idle_limit:
            return None
    Role(user.role)  # an unknown role must never be treated as any role
    return user


def check_roles(session: Session) -> None:
    """Refuse to start when a user row carries a role this version does not know."""
    known = [role.value for role in Role]
    unknown = session.exec(select(User.username, User.role).where(User.role.not_in(known))).all()
    if unknown:
        listed = ", ".join(f"{username} ({role!r})" for username, role in unknown)
        raise UnknownRoleInDatabase(
            f"These accounts have a role this version does not know: {listed}. "
            f"Known roles are {', '.join(known)}. Correct them with manage.py or in the database."
        )


class _WrongCurrentPassword(InputErrors):
    keeps_changes = True  # the counted failure (and any lockout) commits though the change is refused


def change_own_password(session: Session, user: User, current_password: str, new_password: str) -> SignedIn:
    """Change the signed-in user's own password; returns their new sign-in.

    The current password is required, and a wrong one counts towards the lockout as a failed
    sign-in does (a stolen session cannot guess it without limit). The session epoch moves on, so
    every other session of the account ends at its next click; the caller keeps this one with the
    returned `SignedIn`, or signs in again.
    """
    db.require_writing(session)
    # Locked until this change commits, as in sign_in: wrong guesses made at once are each counted.
    fresh = session.get(User, user.id, with_for_update=True)
    now = clock.now()
    if fresh.password_hash is None:
        raise InputErrors({"current_password": "Your account signs in through your organisation; change your "
                                               "password there."})
    if fresh.locked_until and fresh.locked_until > now:
        raise InputErrors({"current_password": "Too many wrong passwords. Try again after "
                                               f"{clock.format_time(fresh.locked_until)}."})
    if not passwords.verify_password(fresh.password_hash, current_password):
        _count_failure(session, fresh, now, action="change_password")
        raise _WrongCurrentPassword({"current_password": "Current password is not right."})
    if current_password == new_password:
        raise InputErrors({"new_password": "New password must differ from the current one."})
    problem = passwords.policy_problem(new_password, fresh.username)
    if problem:
        raise InputErrors({"new_password": problem})
    fresh.password_hash = passwords.hash_password(new_password)
    fresh.must_change_password = False
    fresh.failed_sign_ins = 0
    fresh.first_failed_sign_in_at = None
    fresh.session_epoch += 1  # ends the account's other sessions at their next interaction
    fresh.updated_at = now
    fresh.updated_by_id = fresh.id
    session.add(fresh)
    audit.record(session, fresh, "change_password", entity="user", entity_id=fresh.id,
                 detail="other sessions ended")
    return SignedIn(user_id=fresh.id, session_epoch=fresh.session_epoch)


# --- Administration of users ----------------------------------------------------------------


@dataclass(frozen=True)
class NewUser:
    username: str
    full_name: str
    role: str
    team_id: int
    temporary_password: str
    email: str | None = None


def _checked(errors: dict[str, str], validator, *args):
    """The validator's value, or None with its message put in `errors` under its field."""
    try:
        return validator(*args)
    except check.FieldError as refused:
        errors[refused.field] = refused.message
        return None


def _validate_new_user(session: Session, new: NewUser) -> dict[str, str]:
    errors: dict[str, str] = {}
    username = _checked(errors, check.username, new.username, "username")
    if username and _find_by_username(session, username):
        errors["username"] = f"The username {username!r} is taken; choose another."
    _checked(errors, check.person_name, new.full_name, "full_name")
    email = _checked(errors, check.email, new.email, "email")
    if new.role not in Role.choices():
        errors["role"] = "Choose a role."
    if session.get(Team, new.team_id) is None:
        errors["team_id"] = "Choose a team."
    if _single_sign_on_only(new):
        pass  # signs in through the organisation's identity provider; no password to guess
    elif not new.temporary_password:
        errors["temporary_password"] = "Enter a temporary password, or an e-mail for single sign-on only."  # noqa: S105
    elif problem := passwords.policy_problem(new.temporary_password, username or new.username):
        errors["temporary_password"] = problem
    if email:
        taken = session.exec(select(User.id).where(func.lower(User.email) == email.lower())).first()
        if taken:
            errors["email"] = "Another account already uses this e-mail address."
    return errors


def _single_sign_on_only(new: NewUser) -> bool:
    return not new.temporary_password and bool(new.email and new.email.strip())


def create_user(session: Session, acting: User | None, new: NewUser, *, must_change_password: bool = True,
                submission: str | None = None) -> User:
    """Create an account. `acting` is None only for the command line and the demo seed.

    A second call with the same `submission` token (a double click) returns the account the first made.
    """
    db.require_writing(session)
    if acting is not None:
        require(acting, Permission.MANAGE_USERS)
        if (earlier := submissions.claim(session, acting, submission, "user")) is not None:
            return session.get(User, earlier)
    errors = _validate_new_user(session, new)
    if errors:
        raise InputErrors(errors)
    user = User(
        username=check.username(new.username),
        full_name=check.person_name(new.full_name, "full_name"),
        email=check.email(new.email),
        role=new.role,
        team_id=new.team_id,
        password_hash=None if _single_sign_on_only(new) else passwords.hash_password(new.temporary_password),
        must_change_password=must_change_password and not _single_sign_on_only(new),
        updated_by_id=acting.id if acting else None,
    )
    session.add(user)
    session.flush()
    if acting is not None:
        submissions.fulfil(session, submission, user.id)
    audit.record(session, acting, "create_user", entity="user", entity_id=user.id,
                 detail=f"role {user.role}", username=None if acting else "manage.py")
    return user


def _managed_user(session: Session, acting: User, user_id: int) -> User:
    require(acting, Permission.MANAGE_USERS)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def set_active(session: Session, acting: User, user_id: int, active: bool) -> User:
    db.require_writing(session)
    user = _managed_user(session, acting, user_id)
    if user.id == acting.id and not active:
        raise InputErrors({"active": "You cannot disable your own account."})
    user.active = active
    if not active:
        user.session_epoch += 1  # ends their other sessions at their next interaction
    _touch(user, acting)
    session.add(user)
    audit.record(session, acting, "enable_user" if active else "disable_user", entity="user", entity_id=user.id)
    return user


def change_role(session: Session, acting: User, user_id: int, role: str) -> User:
    db.require_writing(session)
    user = _managed_user(session, acting, user_id)
    if role not in Role.choices():
        raise InputErrors({"role": "Choose a role."})
    if user.id == acting.id and role != Role.ADMINISTRATOR:
        raise InputErrors({"role": "You cannot remove your own administrator role."})
    previous = user.role
    user.role = role
    user.session_epoch += 1
    _touch(user, acting)
    session.add(user)
    audit.record(session, acting, "change_role", entity="user", entity_id=user.id, detail=f"{previous} → {role}")
    return user


def reset_password(session: Session, acting: User, user_id: int, temporary_password: str) -> User:
    db.require_writing(session)
    user = _managed_user(session, acting, user_id)
    problem = passwords.policy_problem(temporary_password, user.username)
    if problem:
        raise InputErrors({"temporary_password": problem})
    user.password_hash = passwords.hash_password(temporary_password)
    user.must_change_password = True
    user.session_epoch += 1
    user.locked_until = None
    user.failed_sign_ins = 0
    _touch(user, acting)
    session.add(user)
    audit.record(session, acting, "reset_password", entity="user", entity_id=user.id)
    return user


def rename_user(session: Session, acting: User, user_id: int, full_name: str, username: str) -> User:
    """Change an account's full name and sign-in username (checked as when it was created).

    The audit trail keeps each row's username as it was, so it still reads after a rename.
    """
    db.require_writing(session)
    user = _managed_user(session, acting, user_id)
    errors: dict[str, str] = {}
    new_name = _checked(errors, check.person_name, full_name, "full_name")
    new_username = _checked(errors, check.username, username, "username")
    if new_username:
        holder = _find_by_username(session, new_username)
        if holder is not None and holder.id != user.id:
            errors["username"] = f"The username {new_username!r} is taken; choose another."
    if errors:
        raise InputErrors(errors)
    changed = [what for what, before, after in (("full name", user.full_name, new_name),
                                                ("username", user.username, new_username)) if before != after]
    if not changed:
        return user
    detail = f"username {user.username} → {new_username}" if "username" in changed else "full name"
    user.full_name, user.username = new_name, new_username
    _touch(user, acting)
    session.add(user)
    audit.record(session, acting, "rename_user", entity="user", entity_id=user.id,
                 detail=detail if len(changed) == 1 else f"full name; {detail}")
    return user


EXPORT_CHOICES: dict[bool | None, str] = {
    None: "As the role allows (team leads may, practitioners and administrators may not)",
    True: "May export",
    False: "May not export",
}


def set_export_permission(session: Session, acting: User, user_id: int, can_export: bool | None) -> User:
    """Grant (True) or withdraw (False) export for one account, or leave it to the role (None).

    Export writes people's names, dates of birth and risk into a file that leaves the app, so it is
    a permission of its own, off by default for administrators. An administrator may not change
    their own: another administrator decides (or `manage.py set-export` at the server).
    """
    db.require_writing(session)
    user = _managed_user(session, acting, user_id)
    if can_export not in EXPORT_CHOICES:
        raise InputErrors({"can_export": "Choose whether they may export."})
    if user.id == acting.id:
        raise InputErrors({"can_export": "Another administrator must change your own export permission."})
    if user.can_export == can_export:
        return user
    previous, user.can_export = user.can_export, can_export
    _touch(user, acting)
    session.add(user)
    audit.record(session, acting, "change_export_permission", entity="user", entity_id=user.id,
                 detail=f"export: {_export_words(previous)} → {_export_words(can_export)}")
    return user


def _export_words(can_export: bool | None) -> str:
    return {None: "as the role allows", True: "allowed", False: "not allowed"}[can_export]


def set_export_from_the_command_line(session: Session, username: str, can_export: bool | None) -> User:
    """`manage.py set-export`: for the first administrator, whom no other administrator can grant."""
    db.require_writing(session)
    user = _find_by_username(session, username)
    if user is None:
        raise NotFound(f"No account has the username {username!r}.")
    previous, user.can_export = user.can_export, can_export
    user.updated_at = clock.now()
    session.add(user)
    audit.record(session, None, "change_export_permission", entity="user", entity_id=user.id,
                 detail=f"export: {_export_words(previous)} → {_export_words(can_export)}", username="manage.py")
    return user


def _touch(user: User, acting: User) -> None:
    user.updated_at = clock.now()
    user.updated_by_id = acting.id


def list_users(session: Session, acting: User) -> list[User]:
    require(acting, Permission.MANAGE_USERS)
    return list(session.exec(select(User).order_by(User.full_name)).all())


def team_members(session: Session, acting: User) -> list[User]:
    """Active staff in the acting user's team (for allocation lists)."""
    require(acting, Permission.VIEW_REQUESTS)
    query = select(User).where(User.team_id == acting.team_id, User.active).order_by(User.full_name)
    return list(session.exec(query).all())
