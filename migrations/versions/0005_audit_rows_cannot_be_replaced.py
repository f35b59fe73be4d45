"""audit rows cannot be replaced on SQLite either

Migration 0002's BEFORE UPDATE and BEFORE DELETE triggers left a way round on SQLite: an insert
that reuses an existing id. `REPLACE INTO auditevent (id, ...)` and `INSERT OR REPLACE` remove
the old row by conflict resolution, which fires no DELETE trigger while `recursive_triggers` is
off (SQLite's default), and so rewrote an audit row in place. This migration adds a BEFORE INSERT
trigger that refuses any insert whose id is already taken, whatever its conflict clause
(`OR REPLACE`, `OR IGNORE`, `ON CONFLICT DO UPDATE`, `ON CONFLICT DO NOTHING`): a new audit row
always gets a new id, so no honest insert is refused.

PostgreSQL needs nothing new: it has no REPLACE, and `INSERT ... ON CONFLICT (id) DO UPDATE`
goes through the row UPDATE trigger of 0002, which refuses it
(tests/test_audit_append_only.py proves both).

Like 0002's, this trigger goes with the table on SQLite: a later batch migration of
"auditevent" must create it again (tests/test_audit_append_only.py::test_the_triggers_exist_at_head).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UPGRADE = (
    """
    CREATE TRIGGER auditevent_no_rewrite BEFORE INSERT ON auditevent
    WHEN EXISTS (SELECT 1 FROM auditevent WHERE id = NEW.id)
    BEGIN
        SELECT RAISE(ABORT, 'audit events are append-only: an insert over an existing audit row refused');
    END
    """,
)
SQLITE_DOWNGRADE = ("DROP TRIGGER IF EXISTS auditevent_no_rewrite",)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
