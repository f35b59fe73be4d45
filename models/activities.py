"""The team's other work: MAPPA meetings, training, pre-sentence reports, prison release."""

from datetime import date

from sqlalchemy import Index
from sqlmodel import Field

from models.base import Editable, code_column
from models.codes import LabelledCode
from models.screening import NOTE_LIMIT


class AudienceAgency(LabelledCode):
    """Who a training session was delivered to (a fixed list; not team-editable).

    Youth offending teams are among the criminal justice agencies the team trains (and the demo
    data records sessions for them), so they have their own entry rather than "Other".
    """

    POLICE = "police", "Police"
    COURT = "court", "Court"
    PROBATION = "probation", "Probation"
    YOUTH_OFFENDING_TEAM = "youth_offending_team", "Youth offending team"
    OTHER = "other", "Other"


class ActivityBase(Editable):
    kind: str = Field(sa_type=code_column())
    activity_on: date
    minutes_spent: int | None = None
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    # MAPPA meeting
    mappa_category: int | None = None
    mappa_level: int | None = None
    agencies_present: str | None = Field(default=None, max_length=500)
    contribution: str | None = Field(default=None, max_length=NOTE_LIMIT)
    # Training delivered
    audience_agency: str | None = Field(default=None, sa_type=code_column())
    topic: str | None = Field(default=None, max_length=200)
    number_trained: int | None = None
    # Pre-sentence report information
    offender_manager: str | None = Field(default=None, max_length=100)
    report_type: str | None = Field(default=None, sa_type=code_column(20))
    requested_on: date | None = None
    provided_on: date | None = None
    shared_what: str | None = Field(default=None, max_length=NOTE_LIMIT)
    consent: str | None = Field(default=None, sa_type=code_column(20))
    # Prison release liaison
    prison: str | None = Field(default=None, max_length=100)
    release_on: date | None = None
    services_referred: str | None = Field(default=None, max_length=500)


class Activity(ActivityBase, table=True):
    __table_args__ = (Index("ix_activity_team_kind_date", "team_id", "kind", "activity_on"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    practitioner_id: int = Field(foreign_key="user.id")
