"""Errors a service raises and a page shows. Messages are written for the person at the screen."""

from datetime import datetime

from services.clock import format_date, format_time


class ServiceError(Exception):
    """Base of every error a page may show as it is."""


class InputErrors(ServiceError):
    """One or more fields were refused. `errors` maps a field name to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = dict(errors)


class PermissionDenied(ServiceError):
    """Refused on the server. The context is what the audit trail records about the refusal."""

    user = None
    action: str | None = None
    entity: str | None = None
    entity_id: int | None = None

    def with_context(self, user, action: str, entity: str | None = None, entity_id=None):
        self.user, self.action, self.entity, self.entity_id = user, str(action), entity, entity_id
        return self


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    """Someone else saved the record first; nothing was overwritten."""

    def __init__(self, changed_by: str, changed_at: datetime):
        super().__init__(
            f"Changed by {changed_by} at {format_time(changed_at)} on {format_date(changed_at)} "
            "— reload to see their changes, then make yours again."
        )
        self.changed_by = changed_by
        self.changed_at = changed_at


class SignInRefused(ServiceError):
    """The failure count and its audit row are committed before this reaches the page."""

    keeps_changes = True
