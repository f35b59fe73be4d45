"""No traceback reaches the browser: the Streamlit configuration says so, and a page whose database
goes away mid-run shows a plain message with no error text in it."""

import re
import tomllib
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from services import db, home
from tests.conftest import ROOT
from ui import guard

SECRET_DETAIL = "could not connect to server at 10.0.0.7 port 5432: password authentication failed for ldhub"
MINIMUM_STREAMLIT = (1, 54)


def _config() -> dict:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))


def test_streamlit_shows_no_error_details_and_keeps_xsrf_and_cors_on():
    config = _config()
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["enableCORS"] is True


def test_no_agent_api_and_no_identity_taken_from_request_headers():
    """Streamlit can be driven without a browser (`enableAgentApi`) and can put request headers into
    `st.user` (`trustedUserHeaders`): either would be a way in past the sign-in. Both stay off."""
    server = _config()["server"]
    assert server.get("enableAgentApi", False) is False
    assert not server.get("trustedUserHeaders")


def test_streamlit_is_pinned_at_a_version_without_the_known_advisories():
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    pinned = re.search(r"^streamlit==(\d+)\.(\d+)\.(\d+)\s*$", requirements, re.MULTILINE)
    assert pinned, "pin Streamlit exactly (streamlit==X.Y.Z) in requirements.txt"
    assert tuple(int(part) for part in pinned.groups()[:2]) >= MINIMUM_STREAMLIT


def _nodes(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def _every_text(test) -> str:
    """Everything the page sent, as the protobuf text of every element (exceptions included)."""
    return " ".join(str(node.proto) for node in _nodes(test._tree) if getattr(node, "proto", None) is not None)


def _operational_error(*_args, **_kwargs):
    raise OperationalError("SELECT count(*) FROM request WHERE team_id = ?", (1,), Exception(SECRET_DETAIL))


def test_a_database_error_mid_page_shows_a_plain_message_and_no_error_text(app_test, sqlite_staff, monkeypatch):
    monkeypatch.setattr(home, "team_counts", _operational_error)
    test = app_test("app.py", sqlite_staff.practitioner).run()
    assert not test.exception
    assert [error.value for error in test.error] == [guard.DATABASE_UNREACHABLE]
    page = _every_text(test)
    assert "could not be reached" in page  # the text dump does include what is shown
    assert SECRET_DETAIL not in page and "OperationalError" not in page and "Traceback" not in page
    assert "SELECT" not in page


def test_a_database_file_that_vanished_shows_the_same_message(app_test, sqlite_engine, sqlite_staff):
    test = app_test("app.py", sqlite_staff.practitioner).run()
    assert test.title[0].value == "My work"
    # The app's own engine (one per process) loses its database: the file and its WAL are gone,
    # and a new connection finds an empty file with no tables.
    app_engine = db.engine_for(str(sqlite_engine.url))
    app_engine.dispose()
    sqlite_engine.dispose()
    database = Path(sqlite_engine.url.database)
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.unlink(missing_ok=True)
    test.run()
    assert not test.exception
    assert [error.value for error in test.error] == [guard.DATABASE_UNREACHABLE]
    assert "no such table" not in _every_text(test)


@pytest.mark.parametrize("error", [ValueError("a bug"), IntegrityError("INSERT", (), Exception("unique"))])
def test_other_errors_are_not_disguised_as_a_database_outage(app_test, sqlite_staff, monkeypatch, error):
    def broken(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(home, "team_counts", broken)
    test = app_test("app.py", sqlite_staff.practitioner).run()
    assert test.exception  # Streamlit's own handling, which the project's config redacts
    assert "redacted" in test.exception[0].message
    assert str(error.orig if isinstance(error, IntegrityError) else error) not in _every_text(test)
    assert guard.DATABASE_UNREACHABLE not in [message.value for message in test.error]
