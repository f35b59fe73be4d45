"""instrument results record how many items were answered

A partial questionnaire (6 of 9 PHQ-9 items, marked not completed) was listed and exported as
"PHQ-9 total 18", which reads as moderately severe. The answered count lets every list say
"18 (partial, 6 of 9)" in SQL. Existing rows are counted from the answers they already keep (an
answer of None is not an answer); the proprietary tools' rows, which keep a result only, stay NULL.

Revision ID: 0006
Revises: 0005
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instrumentresult", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answered", sa.Integer(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, answers FROM instrumentresult WHERE result IS NULL")).all()
    counted = []
    for row_id, answers in rows:
        given = json.loads(answers) if isinstance(answers, str) else (answers or {})
        counted.append({"row_id": row_id, "answered": sum(value is not None for value in given.values())})
    if counted:
        connection.execute(sa.text("UPDATE instrumentresult SET answered = :answered WHERE id = :row_id"), counted)


def downgrade() -> None:
    with op.batch_alter_table("instrumentresult", schema=None) as batch_op:
        batch_op.drop_column("answered")
