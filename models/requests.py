"""The single point of access: requests for advice, information or assessment."""

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field

from models.base import Editable, Timestamped, UTCDateTime, code_column
from models.organisation import NAME_LIMIT

REASON_LIMIT = 2000
SUMMARY_LIMIT = 2000
DETAIL_LIMIT = 200


class RequestBase(Editable):
    received_at: datetime = Field(sa_type=UTCDateTime)
    source_of_referral: str = Field(sa_type=code_column())
    requester_name: str = Field(max_length=NAME_LIMIT)
    requester_role: str | None = Field(default=None, max_length=NAME_LIMIT)
    requester_phone: str | None = Field(default=None, max_length=30)
    requester_email: str | None = Field(default=None, max_length=254)
    request_type: str = Field(sa_type=code_column())
    urgency: str = Field(sa_type=code_column(20))
    reason: str = Field(max_length=REASON_LIMIT)
    custody_number: str | None = Field(default=None, max_length=40)
    arrested_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    offence: str | None = Field(default=None, max_length=DETAIL_LIMIT)
    next_hearing_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    prison_release_on: date | None = None


class Request(RequestBase, table=True):
    __table_args__ = (
        Index("ix_request_team_status_due", "team_id", "status", "due_at"),
        Index("ix_request_team_received", "team_id", "received_at"),
        Index("ix_request_site_received", "site_id", "received_at"),
        Index("ix_request_allocated_status", "allocated_to_id", "status"),
        # Caseload: the requests closed since a moment (open caseload one period ago) are read
        # by range instead of scanning the team's whole history.
        Index("ix_request_team_closed", "team_id", "closed_at"),
        {"sqlite_autoincrement": True},  # ids, and so references, are never reused
    )
    id: int | None = Field(default=None, primary_key=True)
    reference: str | None = Field(default=None, max_length=20, unique=True)
    team_id: int = Field(foreign_key="team.id")
    site_id: int = Field(foreign_key="site.id")
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    status: str = Field(sa_type=code_column(20))
    due_at: datetime = Field(sa_type=UTCDateTime)
    allocated_to_id: int | None = Field(default=None, foreign_key="user.id")
    allocated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_response_mechanism: str | None = Field(default=None, sa_type=code_column(2))
    first_response_summary: str | None = Field(default=None, max_length=SUMMARY_LIMIT)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closure_reason: str | None = Field(default=None, sa_type=code_column())
    created_by_id: int = Field(foreign_key="user.id")


class RequestEvent(Timestamped, table=True):
    """One line of a request's timeline (received, allocated, responded, closed, reopened…).

    `detail` is a short non-clinical note (for example who it was allocated to).
    """

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="request.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    by_user_id: int | None = Field(default=None, foreign_key="user.id")
    kind: str = Field(sa_type=code_column())
    detail: str | None = Field(default=None, max_length=SUMMARY_LIMIT)
