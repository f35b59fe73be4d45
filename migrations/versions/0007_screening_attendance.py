"""a screening records whether the person attended

The national return (MHSDS) reports every care contact with an attended-or-did-not-attend code, and
its data-quality report counts contacts with none. A screening is the service's care contact with
the person, so it keeps the national code. Existing screenings stay NULL: nobody recorded whether
the person attended, and the data-quality report shows them as missing rather than guessing.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both databases (SQLite has dropped columns since 3.35): a batch copy of
# `screening` would drop the table that instrument results, referrals and amendments point to.
def upgrade() -> None:
    op.add_column("screening", sa.Column("attendance", sa.String(length=2), nullable=True))


def downgrade() -> None:
    op.drop_column("screening", "attendance")
