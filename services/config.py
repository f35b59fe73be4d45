"""Configuration from the environment. Nothing here reads Streamlit.

The database connection settings are read by services/db.py when it makes an engine, so a bad
value stops the app (and manage.py) with one plain line before anything connects.
"""

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///data/ldhub.db"


class ConfigError(ValueError):
    """A setting in the environment that cannot be used; the message is one readable line."""


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _whole_number(name: str, default: int, minimum: int, maximum: int, unit: str = "") -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        number = None
    if number is None or not minimum <= number <= maximum:
        raise ConfigError(f"{name} must be a whole number from {minimum} to {maximum}{unit}, not {value!r}")
    return number


@dataclass(frozen=True)
class Config:
    database_url: str
    demo: bool
    demo_password: str | None


def load_config() -> Config:
    return Config(
        database_url=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        # Off unless asked for: a production start must never create known accounts.
        demo=_flag("DEMO", default=False),
        demo_password=os.environ.get("DEMO_PASSWORD") or None,
    )


@dataclass(frozen=True)
class ConnectionSettings:
    """How one app process holds its database connections.

    A Streamlit process runs each browser tab's script on a thread of its own, and each script
    holds a connection only for one short transaction (services/db.py), so a handful of
    connections serve many tabs: 5 kept open and 5 more under load, 10 at most per process. With
    several processes behind the proxy, their sum (processes × (pool + overflow), plus
    manage.py's) must stay under PostgreSQL's `max_connections` (100 by default).
    """

    pool_size: int = 5  # connections kept open
    max_overflow: int = 5  # more opened under load, closed again when returned
    pool_timeout_seconds: int = 10  # a click waits this long for a free connection, then fails plainly
    # PostgreSQL cancels any one statement running longer than this, so a runaway query cannot
    # hold a connection (and locks) for ever. The slowest page, the caseload's first visit, takes
    # under 3 s in all at 1M requests (README's benchmark). 0 turns the limit off (a long one-off
    # maintenance command).
    statement_timeout_ms: int = 30_000


def connection_settings() -> ConnectionSettings:
    """The pool and statement time-out from DATABASE_POOL_SIZE, DATABASE_MAX_OVERFLOW,
    DATABASE_POOL_TIMEOUT and DATABASE_STATEMENT_TIMEOUT_MS; ConfigError for a value out of range."""
    defaults = ConnectionSettings()
    return ConnectionSettings(
        pool_size=_whole_number("DATABASE_POOL_SIZE", defaults.pool_size, 1, 100),
        max_overflow=_whole_number("DATABASE_MAX_OVERFLOW", defaults.max_overflow, 0, 100),
        pool_timeout_seconds=_whole_number("DATABASE_POOL_TIMEOUT", defaults.pool_timeout_seconds, 1, 300,
                                           " seconds"),
        statement_timeout_ms=_whole_number("DATABASE_STATEMENT_TIMEOUT_MS", defaults.statement_timeout_ms,
                                           0, 3_600_000, " milliseconds (0 for no limit)"),
    )
