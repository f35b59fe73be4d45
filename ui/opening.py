"""Opening a record on a page: audited the first time in a browser session, not on every redraw.

A page reruns on every click; auditing each rerun filled the audit log with views nobody made
and took SQLite's write lock for a read. The first opening of a record in this browser session
(a sign-in lasts one, as a full reload signs in again) runs in a writing session and is audited;
later redraws of the same record read in a reading session.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services import db


@contextmanager
def opening(engine: Engine, kind: str, record_id: int) -> Iterator[tuple[Session, bool]]:
    """(session, whether to audit this opening); the record counts as audited once the block succeeds."""
    audited = st.session_state.setdefault(f"audited.{kind}", set())
    first = record_id not in audited
    with db.writing(engine) if first else db.reading(engine) as session:
        yield session, first
    audited.add(record_id)
