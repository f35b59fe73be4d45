"""Command line for the Liaison and Diversion hub.

    python manage.py init-db                      apply migrations, seed code lists
    python manage.py seed-demo [--requests N] [--if-empty]
    python manage.py create-user                  prompts for everything, password included
    python manage.py set-export USERNAME yes|no|role   grant or withdraw export for one account
    python manage.py create-app-role NAME [--print-sql]  PostgreSQL: the least-privileged role the app runs as
    python manage.py backup PATH                  SQLite online backup (PostgreSQL: use pg_dump)
    python manage.py retention-review             people past retention: counts and ids, no names
    python manage.py national-return --month 2026-11 --username lead [--output FOLDER]   MHSDS tables and data quality
    python manage.py bench [--sizes 10k,100k,1m] [--repeats N] [--postgres]   speed and memory by size
    python manage.py bench --load [--staff 1,5,10,20,40] [--processes 1,2] [--seconds 60] [--client protocol|browser]
                                                  many staff at once
"""

import argparse
import getpass
import io
import os
import re
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlmodel import func, select

from models import Team, User
from models.codes import Role
from services import accounts, db, form_drafts, passwords, schema, sign_in_sessions, submissions
from services.config import load_config
from services.errors import InputErrors, NotFound, PermissionDenied

DEMO_PASSWORD_FILE = Path("data/demo-password.txt")


def init_db(_arguments) -> None:
    engine = db.get_engine()
    db.check_connection(engine)
    schema.upgrade(engine)
    with db.writing(engine) as session:
        added = schema.seed_code_lists(session)
        accounts.check_roles(session)
    schema.refresh_statistics(engine)
    print(f"Database ready at {engine.url.render_as_string(hide_password=True)} ({added} codes added).")


def _demo_password() -> str:
    configured = load_config().demo_password
    if configured:
        return configured
    if DEMO_PASSWORD_FILE.exists():
        return DEMO_PASSWORD_FILE.read_text(encoding="utf-8").strip()
    from sample_data.generator import STAFF

    password = secrets.token_urlsafe(12)  # 16 characters; drawn again in the unlikely case the policy refuses it
    while any(passwords.policy_problem(password, username) for username, _, _ in STAFF):
        password = secrets.token_urlsafe(12)
    DEMO_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEMO_PASSWORD_FILE.write_text(password + "\n", encoding="utf-8")
    DEMO_PASSWORD_FILE.chmod(0o600)
    return password


def seed_demo(arguments) -> None:
    from sample_data.generator import DatabaseNotEmpty, generate

    engine = db.get_engine()
    with db.reading(engine) as session:
        has_users = session.exec(select(func.count()).select_from(User)).one() > 0
    password = _demo_password()
    if has_users and arguments.if_empty:
        print("Demo data already present; nothing added.")
    else:
        started = time.perf_counter()
        try:
            summary = generate(engine, requests=arguments.requests, demo_password=password,
                               progress=_print_progress)
        except DatabaseNotEmpty as refusal:
            raise SystemExit(str(refusal)) from None
        except ValueError as refusal:  # DEMO_PASSWORD (or the saved one) refused by the password policy
            raise SystemExit(f"{refusal}. Set DEMO_PASSWORD to a longer phrase, or remove {DEMO_PASSWORD_FILE} "
                             "to have one made.") from None
        schema.refresh_statistics(engine)
        print(f"\nDemo data written in {time.perf_counter() - started:.1f} s: {summary}")
    print("Demo accounts: admin, lead, practitioner (and more practitioners), password:", password)


def _print_progress(stage: str, done: int, total: int) -> None:
    print(f"\r  {stage}: {done:,} of {total:,}", end="", flush=True)


def create_user(_arguments) -> None:
    engine = db.get_engine()
    username = input("Username: ")
    full_name = input("Full name: ")
    role = input(f"Role ({', '.join(Role.choices())}): ").strip()
    team_name = input("Team name (created if new): ").strip()
    password = getpass.getpass(f"Temporary password ({passwords.MINIMUM_LENGTH} to {passwords.MAXIMUM_LENGTH} "
                               "characters; they change it at first sign-in): ")
    try:
        with db.writing(engine) as session:
            team = session.exec(select(Team).where(Team.name == team_name)).first()
            if team is None:
                team = Team(name=team_name)
                session.add(team)
                session.flush()
            accounts.create_user(session, None, accounts.NewUser(username, full_name, role, team.id, password))
    except InputErrors as refused:
        for field, message in refused.errors.items():
            print(f"{field}: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"Created {username.strip()} ({role}) in {team_name}.")


EXPORT_SETTINGS = {"yes": True, "no": False, "role": None}


def set_export(arguments) -> None:
    """Grant or withdraw export for one account (audited as done by manage.py).

    On the Users page an administrator cannot change their own export permission; this is for the
    first administrator, or a service with one.
    """
    engine = db.get_engine()
    try:
        with db.writing(engine) as session:
            user = accounts.set_export_from_the_command_line(session, arguments.username,
                                                             EXPORT_SETTINGS[arguments.setting])
            words = accounts.EXPORT_CHOICES[user.can_export]
    except NotFound as missing:
        raise SystemExit(str(missing)) from None
    print(f"{user.username}: {words}.")


# --- The PostgreSQL role the app connects as ---------------------------------------------------

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
READ_ONLY_TABLES = ("alembic_version",)  # written by migrations only
APPEND_ONLY_TABLES = ("auditevent",)  # rows added, never changed or removed


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"  # standard_conforming_strings is on since PostgreSQL 9.1


def app_role_statements(role: str, *, database: str, schema_name: str, owner: str, password: str | None) -> list[str]:
    """SQL that makes `role` the least-privileged login the app needs, run by the tables' owner.

    Not a superuser, not the owner of any table (so it can neither drop nor disable the audit
    triggers), no CREATE anywhere: CONNECT and TEMPORARY (the caseload measures use temporary
    tables) on the database; USAGE on the schema; SELECT, INSERT, UPDATE, DELETE on the app's
    tables except UPDATE and DELETE on the audit trail and writing to Alembic's version table; USAGE
    on the id sequences. Default privileges give the same on tables and sequences the owner creates
    later, so run this again after every upgrade (it is idempotent) to take the audit trail's
    rights away again should a migration ever recreate it.
    """
    if not ROLE_NAME.fullmatch(role):
        raise ValueError(f"{role!r} is not a role name this command makes: use lower-case letters, digits "
                         "and _, starting with a letter or _.")
    quoted, schema_quoted, owner_quoted = _identifier(role), _identifier(schema_name), _identifier(owner)
    login = f" PASSWORD {_literal(password)}" if password else ""
    statements = [
        f"DO $$ BEGIN CREATE ROLE {quoted}; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        f"ALTER ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS{login}",
        f"GRANT CONNECT, TEMPORARY ON DATABASE {_identifier(database)} TO {quoted}",
        f"GRANT USAGE ON SCHEMA {schema_quoted} TO {quoted}",
        f"REVOKE CREATE ON SCHEMA {schema_quoted} FROM {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema_quoted} TO {quoted}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema_quoted} TO {quoted}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner_quoted} IN SCHEMA {schema_quoted} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner_quoted} IN SCHEMA {schema_quoted} "
        f"GRANT USAGE ON SEQUENCES TO {quoted}",
    ]
    statements += [f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {schema_quoted}.{_identifier(table)} FROM {quoted}"
                   for table in READ_ONLY_TABLES]
    statements += [f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema_quoted}.{_identifier(table)} FROM {quoted}"
                   for table in APPEND_ONLY_TABLES]
    if schema_name != "public":
        statements.append(f"ALTER ROLE {quoted} SET search_path = {schema_quoted}")
    return statements


def create_app_role(arguments) -> None:
    """Make (or bring up to date) the PostgreSQL role the app should connect as (docs/security.md)."""
    engine = db.get_engine()
    if engine.dialect.name != "postgresql":
        raise SystemExit("create-app-role is for PostgreSQL: a SQLite file has no roles (protect the file instead).")
    db.check_connection(engine)
    with engine.connect() as connection:
        database, schema_name, owner = connection.execute(
            text("SELECT current_database(), current_schema(), current_user")).one()
    password = None
    if not arguments.print_sql:
        password = os.environ.get(arguments.password_env) or getpass.getpass(f"Password for {arguments.name}: ")
    try:
        statements = app_role_statements(arguments.name, database=database, schema_name=schema_name, owner=owner,
                                         password=password)
    except ValueError as problem:
        raise SystemExit(str(problem)) from None
    if arguments.print_sql:
        print(";\n".join(statements) + ";")
        print(f"-- then set the role's password: ALTER ROLE {_identifier(arguments.name)} PASSWORD '…';")
        return
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
    print(f"Role {arguments.name} can use the hub's tables in {database}.{schema_name} and cannot change or remove "
          f"audit rows. Point the app's DATABASE_URL at it; keep {owner} for init-db and upgrades.")


def backup(arguments) -> None:
    engine = db.get_engine()
    if engine.dialect.name != "sqlite":
        raise SystemExit("For PostgreSQL use pg_dump, for example: pg_dump --format=custom -f backup.dump DBNAME")
    target = Path(arguments.path)
    if target.exists():
        raise SystemExit(f"{target} exists already; choose a new file name.")
    source = sqlite3.connect(engine.url.database)
    destination = sqlite3.connect(target)
    try:
        # The online backup API copies a consistent snapshot even while others write; a file
        # copy of a WAL database can miss committed pages still in the -wal file. One step:
        # copying in slices restarts whenever someone writes, and never ends on a busy database.
        source.backup(destination)
    finally:
        destination.close()
        source.close()
    print(f"Backed up to {target} ({target.stat().st_size:,} bytes).")


def retention_review(_arguments) -> None:
    """List who is past retention. Deleting needs an administrator's approval in the app."""
    from services import retention
    from services.clock import format_date

    engine = db.get_engine()
    with db.reading(engine) as session:
        queue = retention.review_queue(session, None, limit=sys.maxsize)
    print(f"Retention review on {format_date(queue.today)}: {queue.rule.describe()}.")
    print(f"Past retention: {queue.total} (adults {queue.adults}, children {queue.children})")
    if queue.cases:
        print(f"{'person':>8} {'team':>6} {'rule':<6} {'last contact':<12} {'kept until':<10}")
    for case in queue.cases:
        print(f"{case.person_id:>8} {case.team_id:>6} {case.kind:<6} {format_date(case.last_contact_on):<12} "
              f"{format_date(case.retain_until):<10}")
    if queue.cases:
        print("To delete, an administrator approves them on the Retention review page.")


def national_return(arguments) -> None:
    """The month's national return (workbook and CSV files) written to a folder, as the named user.

    The user's permissions apply and the export is audited under their name, as on the Export page.
    """
    from services import national_return as national

    engine = db.get_engine()
    try:
        month = national.ReturnMonth.parse(arguments.month)
        with db.reading(engine) as session:
            user = session.exec(select(User).where(User.username == arguments.username)).first()
        if user is None or not user.active:
            raise SystemExit(f"No active account called {arguments.username!r}.")
        files, built = {}, None
        for write, suffix in ((national.write_workbook, "xlsx"), (national.write_csv_zip, "zip")):
            files[national.file_name(month, suffix)] = content = io.BytesIO()
            with db.reading(engine) as session:
                built = write(session, user, month, target=content)
    except InputErrors as refused:
        raise SystemExit(refused.errors["month"]) from None
    except PermissionDenied:
        raise SystemExit(f"{arguments.username} may not export the national return (needs export and caseload "
                         "permissions).") from None
    folder = Path(arguments.output)  # made only once the files exist: a refusal leaves nothing behind
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content.getvalue())
        print(f"Wrote {folder / name}")
    print(f"{month.label}: {built.in_words()}")
    for line in built.quality:
        share = line.share(national.Quality.VALID)
        print(f"  {line.check.title}: {line.records} records, "
              + ("none this month" if share is None else f"{share:.0%} valid, {line.to_fix} to fix"))


def purge_expired(_arguments) -> None:
    """Delete what the app keeps only for a while: unsaved drafts (7 days), ended sign-ins, old
    submission tokens. Safe to run at any time (a daily cron job, say); it never touches records."""
    with db.writing(db.get_engine()) as session:
        drafts = form_drafts.purge_expired(session)
        sessions = sign_in_sessions.purge_ended(session)
        tokens = submissions.purge_expired(session)
    print(f"Deleted {drafts} expired draft(s), {sessions} ended sign-in(s) and {tokens} old submission token(s).")


LOAD_OPTIONS = ("staff", "processes", "seconds", "idle_tabs", "client")


def bench(arguments) -> None:
    command = "python manage.py bench " + " ".join(arguments.given)
    if arguments.load:
        from bench import load

        load.run(arguments.staff or load.DEFAULT_STAFF, arguments.processes or load.DEFAULT_PROCESSES,
                 seconds=arguments.seconds or load.DEFAULT_SECONDS,
                 idle_tabs=load.DEFAULT_IDLE_TABS if arguments.idle_tabs is None else arguments.idle_tabs,
                 client=arguments.client or load.DEFAULT_CLIENT, command=command)
        return
    if given := [f"--{name.replace('_', '-')}" for name in LOAD_OPTIONS if getattr(arguments, name) is not None]:
        raise SystemExit(f"{', '.join(given)}: only with --load.")
    from bench import benchmark

    benchmark.run(arguments.sizes, repeats=arguments.repeats, export_repeats=arguments.export_repeats,
                  postgres=arguments.postgres, work_folder=arguments.keep_databases, command=command)


def _sizes(text: str) -> list[int]:
    from bench.report import parse_sizes

    try:
        return parse_sizes(text)
    except ValueError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None


def _levels(most: int, what: str) -> Callable[[str], list[int]]:
    def parse(text: str) -> list[int]:
        from bench.load import parse_levels

        try:
            return parse_levels(text, most=most, what=what)
        except ValueError as problem:
            raise argparse.ArgumentTypeError(str(problem)) from None

    return parse


def _bounded(lowest: int, highest: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().isdigit() or not lowest <= int(text) <= highest:
            raise argparse.ArgumentTypeError(f"a whole number from {lowest} to {highest}, not {text!r}")
        return int(text)

    return parse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="manage.py", description="Liaison and Diversion hub")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init-db", help="apply migrations and seed code lists").set_defaults(run=init_db)
    seed = commands.add_parser("seed-demo", help="write deterministic demo data")
    seed.add_argument("--requests", type=int, default=6000)
    seed.add_argument("--if-empty", action="store_true", help="do nothing when accounts exist")
    seed.set_defaults(run=seed_demo)
    commands.add_parser("create-user", help="create an account (prompts)").set_defaults(run=create_user)
    export_parser = commands.add_parser("set-export", help="grant or withdraw export for one account")
    export_parser.add_argument("username")
    export_parser.add_argument("setting", choices=list(EXPORT_SETTINGS),
                               help="yes: may export; no: may not; role: as their role allows")
    export_parser.set_defaults(run=set_export)
    role_parser = commands.add_parser("create-app-role",
                                      help="PostgreSQL: the role the app connects as (no audit changes, not the owner)")
    role_parser.add_argument("name")
    role_parser.add_argument("--print-sql", action="store_true", help="print the SQL for a DBA instead of running it")
    role_parser.add_argument("--password-env", default="LDHUB_APP_PASSWORD", metavar="VARIABLE",
                             help="environment variable holding the role's password (default LDHUB_APP_PASSWORD; "
                             "asked for when unset)")
    role_parser.set_defaults(run=create_app_role)
    backup_parser = commands.add_parser("backup", help="online backup of the SQLite database")
    backup_parser.add_argument("path")
    backup_parser.set_defaults(run=backup)
    commands.add_parser("retention-review", help="list people past retention (ids, no names)").set_defaults(
        run=retention_review)
    return_parser = commands.add_parser("national-return",
                                        help="write a month's national return (MHSDS) and its data-quality report")
    return_parser.add_argument("--month", required=True, help="year-month, e.g. 2026-11")
    return_parser.add_argument("--username", required=True, help="whose export it is (their permissions apply)")
    return_parser.add_argument("--output", default=".", help="folder for the workbook and the zip (default: here)")
    return_parser.set_defaults(run=national_return)
    commands.add_parser("purge-expired", help="delete expired drafts, ended sign-ins and old submission tokens"
                        ).set_defaults(run=purge_expired)
    bench_parser = commands.add_parser("bench", help="measure pages, queries, export and demo data by size")
    bench_parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000],
                              help="requests per database, e.g. 10k,100k,1m (default 10k,100k)")
    bench_parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (default 5)")
    bench_parser.add_argument("--export-repeats", type=int, help="runs per export writer (default min(repeats, 3))")
    bench_parser.add_argument("--postgres", action="store_true",
                              help="also PostgreSQL, in a private schema of TEST_DATABASE_URL")
    bench_parser.add_argument("--keep-databases", type=Path, metavar="FOLDER",
                              help="write the SQLite databases here and keep them (for profiling)")
    load_options = bench_parser.add_argument_group(
        "--load", "many staff at once against `streamlit run` on a PostgreSQL schema of its own "
        "(TEST_DATABASE_URL, else 127.0.0.1:5432/test); writes bench/load.json and bench/load.md")
    load_options.add_argument("--load", action="store_true", help="run the load benchmark (bench/load.py)")
    load_options.add_argument("--staff", type=_levels(40, "staff"), metavar="N,N",
                              help="simulated staff per level, at most 40 (default 1,5,10,20,40)")
    load_options.add_argument("--processes", type=_levels(2, "processes"), metavar="P,P",
                              help="streamlit processes per level, 1 or 2 (default 1,2)")
    load_options.add_argument("--seconds", type=_bounded(5, 600),
                              help="each level's working time after everyone signed in (default 60)")
    load_options.add_argument("--idle-tabs", type=_bounded(0, 40), metavar="M",
                              help="signed-in idle tabs for the memory per idle session (default 20; 0: not measured)")
    from bench.load import CLIENTS, DEFAULT_CLIENT

    load_options.add_argument("--client", choices=CLIENTS,
                              help=f"who drives the staff (default {DEFAULT_CLIENT}): protocol, a light client of "
                              "Streamlit's own websocket messages; browser, contexts of one headless chromium")
    bench_parser.set_defaults(run=bench)
    arguments = parser.parse_args(argv)
    arguments.given = list(sys.argv[1:] if argv is None else argv)[1:]
    try:
        arguments.run(arguments)
    except (db.DatabaseUnavailable, accounts.UnknownRoleInDatabase) as problem:
        raise SystemExit(str(problem)) from None


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent)
    main()
