"""audit events are append-only in the database too

The services never update or delete an AuditEvent, and an ORM guard (services/audit.py) refuses
it in a session. Neither stops a bulk `UPDATE`/`DELETE` statement, a bug in a future feature or
someone with a SQL prompt using the app's own connection: these triggers do.

- PostgreSQL: one trigger function refuses UPDATE and DELETE (row by row) and TRUNCATE
  (statement) on "auditevent". A superuser or the table's owner can still drop the trigger, so
  in production the app should connect as a role that neither owns the table nor has UPDATE,
  DELETE or TRUNCATE on it (docs/security.md).
- SQLite: BEFORE UPDATE and BEFORE DELETE triggers RAISE(ABORT). SQLite drops a table's triggers
  with the table, and a batch migration rebuilds a table by copy-and-drop, so any later batch
  migration of "auditevent" must create these triggers again: tests/test_audit_append_only.py
  checks that they exist at head, and fails if a later migration loses them.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "audit events are append-only"

POSTGRESQL_UPGRADE = (
    f"""
    CREATE FUNCTION auditevent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE}: % on auditevent refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER auditevent_no_update_or_delete BEFORE UPDATE OR DELETE ON auditevent
        FOR EACH ROW EXECUTE FUNCTION auditevent_append_only()
    """,
    """
    CREATE TRIGGER auditevent_no_truncate BEFORE TRUNCATE ON auditevent
        FOR EACH STATEMENT EXECUTE FUNCTION auditevent_append_only()
    """,
)
POSTGRESQL_DOWNGRADE = (
    "DROP TRIGGER IF EXISTS auditevent_no_truncate ON auditevent",
    "DROP TRIGGER IF EXISTS auditevent_no_update_or_delete ON auditevent",
    "DROP FUNCTION IF EXISTS auditevent_append_only()",
)

SQLITE_UPGRADE = (
    f"""
    CREATE TRIGGER auditevent_no_update BEFORE UPDATE ON auditevent
    BEGIN
        SELECT RAISE(ABORT, '{MESSAGE}: UPDATE on auditevent refused');
    END
    """,
    f"""
    CREATE TRIGGER auditevent_no_delete BEFORE DELETE ON auditevent
    BEGIN
        SELECT RAISE(ABORT, '{MESSAGE}: DELETE on auditevent refused');
    END
    """,
)
SQLITE_DOWNGRADE = (
    "DROP TRIGGER IF EXISTS auditevent_no_update",
    "DROP TRIGGER IF EXISTS auditevent_no_delete",
)


def _statements(postgresql: Sequence[str], sqlite: Sequence[str]) -> Sequence[str]:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql
    if dialect == "sqlite":
        return sqlite
    return ()  # another database: the ORM guard in services/audit.py is the only line


def upgrade() -> None:
    for statement in _statements(POSTGRESQL_UPGRADE, SQLITE_UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(POSTGRESQL_DOWNGRADE, SQLITE_DOWNGRADE):
        op.execute(statement)
