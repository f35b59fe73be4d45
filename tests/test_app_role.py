"""The least-privileged PostgreSQL role the app should connect as (`manage.py create-app-role`).

In a fresh schema migrated by the tables' owner, the role is made with `manage.app_role_statements`,
the app connects as it and does its ordinary work through the services; then every way of changing
or removing audit rows, or of switching their triggers off, is tried as that role and refused by
the database: UPDATE, DELETE, TRUNCATE, an upsert, ALTER TABLE … DISABLE TRIGGER, DROP TRIGGER, DROP
TABLE. PostgreSQL only: SQLite has no roles.
"""

import os
from datetime import date

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import func, select

import manage
from models import AuditEvent, Person
from services import accounts, db, people, schema
from services.errors import SignInRefused
from tests import conftest

pytestmark = pytest.mark.postgres


@pytest.fixture
def app_role(worker_id):
    """(owner engine, app-role engine, role name) in a schema of their own, dropped afterwards."""
    url = conftest.postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL only (SQLite has no roles); PostgreSQL half skipped: {conftest._postgres_reason}")
    schema_name = f"ldhub_role_{worker_id}_{os.getpid()}"
    role = f"ldhub_app_{worker_id}_{os.getpid()}".lower()
    base = db.create_database_engine(url)
    try:
        with base.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema_name}"'))
            database, owner, superuser = connection.execute(text(
                "SELECT current_database(), current_user, rolsuper FROM pg_roles WHERE rolname = current_user")).one()
    except Exception as error:  # a server that answers but refuses us: skip, saying why
        pytest.skip(f"PostgreSQL half skipped: {url} refused: {str(error).splitlines()[0]}")
    if not superuser:
        pytest.skip(f"the test user {owner} cannot create roles; run this test as a superuser of a test server")
    owner_engine = db.create_database_engine(url, search_path=schema_name)
    schema.upgrade(owner_engine)  # the owner migrates, as init-db does
    with db.writing(owner_engine) as session:
        schema.seed_code_lists(session)
    with owner_engine.begin() as connection:
        for statement in manage.app_role_statements(role, database=database, schema_name=schema_name, owner=owner,
                                                    password="a role password for the tests"):
            connection.exec_driver_sql(statement)
    as_role = make_url(url).set(username=role, password="a role password for the tests")
    role_engine = db.create_database_engine(as_role.render_as_string(hide_password=False))  # its own search_path
    yield owner_engine, role_engine, role
    role_engine.dispose()
    owner_engine.dispose()
    with base.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
        connection.execute(text(f'DROP OWNED BY "{role}"'))
        connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    base.dispose()


def test_the_app_role_is_neither_superuser_nor_owner(app_role):
    owner_engine, _role_engine, role = app_role
    with owner_engine.connect() as connection:
        superuser, creates = connection.execute(
            text("SELECT rolsuper, rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = :role"),
            {"role": role}).one()
        owned = connection.execute(text(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tableowner = :role"),
            {"role": role}).scalar_one()
    assert (superuser, creates, owned) == (False, False, 0)


def test_the_app_works_as_that_role(app_role):
    _owner_engine, role_engine, _role = app_role
    staff = conftest.make_staff(role_engine)  # inserts into teams, sites and users (sequences too)
    with db.writing(role_engine) as session:  # updates a user row and appends audit rows
        accounts.sign_in(session, staff.practitioner.username, conftest.PASSWORD)
    with db.writing(role_engine) as session:
        people.create_person(session, staff.practitioner, people.NewPerson("Siôn", "O'Brien", date(1990, 5, 11)))
    with db.reading(role_engine) as session:
        assert session.exec(select(func.count()).select_from(Person)).one() == 1
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 2


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE auditevent SET outcome = 'success'", "permission denied"),
        ("DELETE FROM auditevent", "permission denied"),
        ("TRUNCATE auditevent", "permission denied"),
        ("INSERT INTO auditevent (id, at, action, outcome) SELECT id, at, action, 'success' FROM auditevent "
         "ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome", "permission denied"),
        ("ALTER TABLE auditevent DISABLE TRIGGER auditevent_no_update_or_delete", "must be owner"),
        ("ALTER TABLE auditevent DISABLE TRIGGER ALL", "must be owner"),
        ("DROP TRIGGER auditevent_no_update_or_delete ON auditevent", "must be owner"),
        ("DROP TABLE auditevent", "must be owner"),
        ("UPDATE alembic_version SET version_num = '0001'", "permission denied"),
        ("CREATE TABLE smuggled (id integer)", "permission denied"),
    ],
)
def test_the_app_role_cannot_change_the_audit_trail_or_its_triggers(app_role, statement, refusal):
    _owner_engine, role_engine, _role = app_role
    with pytest.raises(SignInRefused), db.writing(role_engine) as session:
        accounts.sign_in(session, "nobody", "a wrong password")  # an audit row to try to change
    with pytest.raises(DBAPIError, match=refusal), role_engine.begin() as connection:
        connection.exec_driver_sql(statement)
    with db.reading(role_engine) as session:
        rows = session.exec(select(AuditEvent)).all()
    assert [(row.action, row.outcome, row.username) for row in rows] == [("sign_in", "failure", "nobody")]


def test_the_statements_refuse_an_odd_role_name():
    with pytest.raises(ValueError, match="not a role name"):
        manage.app_role_statements('app"; DROP TABLE auditevent; --', database="d", schema_name="s", owner="o",
                                   password=None)
