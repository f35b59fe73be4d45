"""SQLModel tables and code lists. Importing this package registers every table."""

from models.activities import Activity
from models.audit import AuditEvent
from models.export import SavedColumnSet
from models.organisation import CodeItem, Setting, Site, Team, User
from models.people import Person
from models.requests import Request, RequestEvent
from models.screening import (
    InstrumentResult,
    OnwardReferral,
    Screening,
    ScreeningAmendment,
    ScreeningVulnerability,
)
from models.sessions import FormDraft, SignedInSession, Submission

__all__ = [
    "Activity",
    "AuditEvent",
    "CodeItem",
    "FormDraft",
    "InstrumentResult",
    "OnwardReferral",
    "Person",
    "Request",
    "RequestEvent",
    "SavedColumnSet",
    "Screening",
    "ScreeningAmendment",
    "ScreeningVulnerability",
    "Setting",
    "SignedInSession",
    "Site",
    "Submission",
    "Team",
    "User",
]
