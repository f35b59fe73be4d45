"""Who may do what: the one table that says so, checked in services on every call.

Hiding a page is convenience; these checks are the security.

- Export is a permission of its own. Team leads have it by their role; practitioners and
  administrators do not, and an administrator grants or withdraws it per person (`User.can_export`,
  `services/accounts.py: set_export_permission`). Administrators cannot open a person's record, so
  export would otherwise let them take every screening's names and risk out of the app.
- A record that does not exist and a record of another team get the same answer ("No such record
  in your team.") and the same denied audit row naming the id asked for (`require_team_record`):
  the answer to a guessed id says nothing about whether another team has that record.
"""

import logging
from enum import StrEnum

from models import User
from models.codes import Role
from services.errors import PermissionDenied

log = logging.getLogger("ldhub.permissions")


class Permission(StrEnum):
    VIEW_HOME = "view_home"
    VIEW_REQUESTS = "view_requests"
    LOG_REQUEST = "log_request"
    RESPOND_TO_REQUEST = "respond_to_request"
    ALLOCATE_TO_SELF = "allocate_to_self"
    ALLOCATE_REQUESTS = "allocate_requests"
    REOPEN_REQUEST = "reopen_request"
    VIEW_PEOPLE = "view_people"
    EDIT_PEOPLE = "edit_people"
    SCREEN = "screen"
    REFER = "refer"
    LOG_ACTIVITY = "log_activity"
    VIEW_ACTIVITIES = "view_activities"
    VIEW_CASELOAD = "view_caseload"
    EXPORT = "export"
    MANAGE_USERS = "manage_users"
    MANAGE_SERVICE = "manage_service"  # sites, code lists, settings, teams
    VIEW_AUDIT = "view_audit"
    REVIEW_RETENTION = "review_retention"


_CLIENT_WORK = {
    Permission.VIEW_HOME,
    Permission.VIEW_REQUESTS,
    Permission.LOG_REQUEST,
    Permission.RESPOND_TO_REQUEST,
    Permission.ALLOCATE_TO_SELF,
    Permission.VIEW_PEOPLE,
    Permission.EDIT_PEOPLE,
    Permission.SCREEN,
    Permission.REFER,
    Permission.LOG_ACTIVITY,
    Permission.VIEW_ACTIVITIES,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PRACTITIONER: frozenset(_CLIENT_WORK),
    Role.TEAM_LEAD: frozenset(
        _CLIENT_WORK
        | {
            Permission.ALLOCATE_REQUESTS,
            Permission.REOPEN_REQUEST,
            Permission.VIEW_CASELOAD,
            Permission.EXPORT,
        }
    ),
    Role.ADMINISTRATOR: frozenset(
        {
            Permission.VIEW_HOME,
            Permission.VIEW_CASELOAD,
            # Not EXPORT: granted per person (User.can_export), see the module's docstring.
            Permission.MANAGE_USERS,
            Permission.MANAGE_SERVICE,
            Permission.VIEW_AUDIT,
            Permission.REVIEW_RETENTION,
        }
    ),
}


def has_permission(user: User | None, permission: Permission) -> bool:
    if user is None or not user.active:
        return False
    if permission is Permission.EXPORT and user.can_export is not None:
        return user.can_export  # an administrator granted or withdrew export for this person
    try:
        role = Role(user.role)
    except ValueError:
        return False
    return permission in ROLE_PERMISSIONS[role]


def require(user: User | None, permission: Permission) -> User:
    """Return the user when allowed; otherwise raise PermissionDenied (audited by db)."""
    if not has_permission(user, permission):
        log.warning("denied %s to user %s", permission, user.username if user else "anonymous")
        raise PermissionDenied(
            "You do not have permission to do this. Ask your team lead or an administrator "
            "if you need it.",
        ).with_context(user, permission)
    return user


NO_SUCH_RECORD = "No such record in your team."


class NoSuchRecord(PermissionDenied):
    """A record that is not there, or is another team's: one answer, one denied audit row.

    A PermissionDenied in both cases (so `services.db` audits it as denied), never a NotFound: a
    caller that told the two apart would give the difference away again.
    """


def require_team_record(user: User, record, *, entity: str, entity_id: int | None):
    """Return `record` when it exists and belongs to the user's team; otherwise refuse alike.

    `entity_id` is the id that was asked for, so the audit row names it even for a missing record.
    """
    if record is None or user.team_id != record.team_id:
        log.warning("denied %s %s (missing or another team's) to %s", entity, entity_id, user.username)
        raise NoSuchRecord(NO_SUCH_RECORD).with_context(user, f"view_{entity}", entity, entity_id)
    return record


def require_team(user: User, team_id: int, *, entity: str, entity_id: int | None) -> None:
    """Practitioners and team leads see their own team's records only."""
    if user.team_id != team_id:
        log.warning("denied %s %s of another team to %s", entity, entity_id, user.username)
        raise NoSuchRecord(NO_SUCH_RECORD).with_context(user, f"view_{entity}", entity, entity_id)
