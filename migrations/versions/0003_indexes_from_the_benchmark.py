"""indexes the benchmark asked for (manage.py bench, 1M requests)

- screening (site_id): Service settings counts each site's uses before a site can be retired,
  and read the whole screening table to do it (205 ms of the page's 320 ms).
- person (last_contact_on): the retention review bounds its candidates by the last contact,
  and read every person to find the few old enough (154 ms → 8 ms).
- screening (practitioner_id, status, updated_at), replacing (practitioner_id, status): My work
  lists a practitioner's drafts newest first. With sampled statistics SQLite took the (team,
  screened) index and sorted all 673,000 screenings (336 ms → 39 ms); now the index gives the
  drafts in order and wins whatever the statistics say.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_screening_site", "screening", ["site_id"])
    op.create_index("ix_person_last_contact", "person", ["last_contact_on"])
    op.drop_index("ix_screening_practitioner_status", table_name="screening")
    op.create_index("ix_screening_practitioner_status", "screening", ["practitioner_id", "status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_screening_practitioner_status", table_name="screening")
    op.create_index("ix_screening_practitioner_status", "screening", ["practitioner_id", "status"])
    op.drop_index("ix_person_last_contact", table_name="person")
    op.drop_index("ix_screening_site", table_name="screening")
