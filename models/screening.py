"""Screenings, the instruments scored in them, and onward referrals."""

from datetime import date, datetime

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field

from models.base import Editable, Timestamped, UTCDateTime, code_column

NOTE_LIMIT = 2000
RECOMMENDATION_LIMIT = 2000


class ScreeningBase(Editable):
    screened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    site_id: int | None = Field(default=None, foreign_key="site.id")
    contact_mechanism: str | None = Field(default=None, sa_type=code_column(2))
    attendance: str | None = Field(default=None, sa_type=code_column(2))  # attended or did not attend
    custody_or_court_details: str | None = Field(default=None, max_length=NOTE_LIMIT)
    appropriate_adult_required: bool = False
    appropriate_adult_reason: str | None = Field(default=None, max_length=NOTE_LIMIT)
    consent_to_screening: str | None = Field(default=None, sa_type=code_column(20))
    consent_to_share: str | None = Field(default=None, sa_type=code_column(20))
    capacity_decided_by: str | None = Field(default=None, max_length=100)
    capacity_reason: str | None = Field(default=None, max_length=NOTE_LIMIT)
    learning_disability_status: str | None = Field(default=None, sa_type=code_column(2))
    autism_status: str | None = Field(default=None, sa_type=code_column(2))
    risk_to_self: str | None = Field(default=None, sa_type=code_column(10))
    risk_to_self_note: str | None = Field(default=None, max_length=NOTE_LIMIT)
    risk_to_others: str | None = Field(default=None, sa_type=code_column(10))
    risk_to_others_note: str | None = Field(default=None, max_length=NOTE_LIMIT)
    risk_from_others: str | None = Field(default=None, sa_type=code_column(10))
    risk_from_others_note: str | None = Field(default=None, max_length=NOTE_LIMIT)
    outcome: str | None = Field(default=None, sa_type=code_column())
    recommendation_fitness_for_interview: str | None = Field(
        default=None, max_length=RECOMMENDATION_LIMIT
    )
    recommendation_appropriate_adult: str | None = Field(default=None, max_length=RECOMMENDATION_LIMIT)
    recommendation_adjustments: str | None = Field(default=None, max_length=RECOMMENDATION_LIMIT)
    shared_with: str | None = Field(default=None, max_length=200)
    shared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    shared_what: str | None = Field(default=None, max_length=NOTE_LIMIT)


class Screening(ScreeningBase, table=True):
    __table_args__ = (
        Index("ix_screening_team_screened", "team_id", "screened_at"),
        # A practitioner's drafts, newest first (My work), read in order from the index.
        Index("ix_screening_practitioner_status", "practitioner_id", "status", "updated_at"),
        # Service settings counts each site's uses before a site can be retired.
        Index("ix_screening_site", "site_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    person_id: int = Field(foreign_key="person.id", index=True)
    request_id: int | None = Field(default=None, foreign_key="request.id", index=True)
    practitioner_id: int = Field(foreign_key="user.id")
    status: str = Field(sa_type=code_column(10))
    # Names of the form's sections saved so far, so a returning practitioner sees progress.
    sections_saved: list[str] = Field(default_factory=list, sa_type=JSON)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ScreeningVulnerability(Timestamped, table=True):
    """One vulnerability found at a screening (a row each, so counts are a GROUP BY)."""

    __table_args__ = (UniqueConstraint("screening_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    screening_id: int = Field(foreign_key="screening.id", index=True)
    code: str = Field(sa_type=code_column(), index=True)


class InstrumentResult(Editable, table=True):
    """Every item answer, the total, the band, the flags and the scoring version."""

    __table_args__ = (UniqueConstraint("screening_id", "instrument"),)
    id: int | None = Field(default=None, primary_key=True)
    screening_id: int = Field(foreign_key="screening.id", index=True)
    instrument: str = Field(sa_type=code_column(20))
    scoring_version: str = Field(max_length=40)
    answers: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
    total: int | None = None
    band: str | None = Field(default=None, max_length=60)
    flags: list[str] = Field(default_factory=list, sa_type=JSON)
    complete: bool = False
    # How many items were answered: with `complete`, it tells a full total from a partial sum
    # ("18 (partial, 6 of 9)"), which must never read as a total or carry a band.
    answered: int | None = None
    # For proprietary tools (HASI, LDSQ, CHAT) only the result is recorded.
    result: str | None = Field(default=None, max_length=100)
    not_completed_reason: str | None = Field(default=None, max_length=NOTE_LIMIT)


class ScreeningAmendment(Timestamped, table=True):
    """A change to a completed screening: who, when, why, and the values before and after."""

    id: int | None = Field(default=None, primary_key=True)
    screening_id: int = Field(foreign_key="screening.id", index=True)
    amended_at: datetime = Field(sa_type=UTCDateTime)
    amended_by_id: int = Field(foreign_key="user.id")
    reason: str = Field(max_length=NOTE_LIMIT)
    changes: dict = Field(default_factory=dict, sa_type=JSON)


class OnwardReferral(Editable, table=True):
    __table_args__ = (Index("ix_referral_team_referred", "team_id", "referred_on"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    person_id: int = Field(foreign_key="person.id", index=True)
    screening_id: int | None = Field(default=None, foreign_key="screening.id", index=True)
    service: str = Field(sa_type=code_column())
    referred_on: date
    status: str = Field(sa_type=code_column(20))
    attendance: str | None = Field(default=None, sa_type=code_column(2))
    outcome_on: date | None = None
    note: str | None = Field(default=None, max_length=NOTE_LIMIT)
