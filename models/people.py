"""The people the service screens."""

from datetime import date

from sqlalchemy import Index
from sqlmodel import Field

from models.base import Editable, code_column
from models.organisation import NAME_LIMIT

REFERENCE_LIMIT = 40
COMMUNICATION_NEEDS_LIMIT = 500


class PersonBase(Editable):
    given_name: str = Field(max_length=NAME_LIMIT)
    family_name: str = Field(max_length=NAME_LIMIT)
    date_of_birth: date | None = None
    nhs_number: str | None = Field(default=None, max_length=10)
    nhs_number_status: str = Field(sa_type=code_column(20))
    pnc_reference: str | None = Field(default=None, max_length=REFERENCE_LIMIT)
    custody_reference: str | None = Field(default=None, max_length=REFERENCE_LIMIT)
    gender_identity: str | None = Field(default=None, sa_type=code_column(2))
    ethnic_category: str | None = Field(default=None, sa_type=code_column(2))
    preferred_language: str | None = Field(default=None, max_length=60)
    communication_needs: str | None = Field(default=None, max_length=COMMUNICATION_NEEDS_LIMIT)


class Person(PersonBase, table=True):
    __table_args__ = (
        # Unique within a team when present: NULLs do not collide on SQLite or PostgreSQL.
        Index("ix_person_team_nhs_number", "team_id", "nhs_number", unique=True),
        # Name keys are searched by prefix while someone types. SQLite answers a prefix as a range
        # on these indexes; PostgreSQL answers LIKE 'prefix%' on text_pattern_ops whatever the
        # database's collation. The other name key rides along in each of these three indexes so
        # that the search and the duplicate check filter and rank from the index alone.
        Index("ix_person_team_family_key", "team_id", "family_name_key", "given_name_key",
              postgresql_ops={"family_name_key": "text_pattern_ops"}),
        Index("ix_person_team_given_key", "team_id", "given_name_key", "family_name_key",
              postgresql_ops={"given_name_key": "text_pattern_ops"}),
        Index("ix_person_team_date_of_birth", "team_id", "date_of_birth", "family_name_key", "given_name_key"),
        Index("ix_person_team_pnc_reference", "team_id", "pnc_reference"),
        Index("ix_person_team_custody_reference", "team_id", "custody_reference"),
        # The retention review bounds its candidates by the last contact (services/retention.py).
        Index("ix_person_last_contact", "last_contact_on"),
    )
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    # Normalised names (services.matching.name_key) so duplicate search is an indexed lookup.
    given_name_key: str = Field(max_length=2 * NAME_LIMIT)  # a key can outgrow its name (æ → ae)
    family_name_key: str = Field(max_length=2 * NAME_LIMIT)
    last_contact_on: date | None = None
