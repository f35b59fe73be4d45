"""Asking which reading of the autumn hour that happens twice a typed London time means.

On the last Sunday of October UK clocks go back at 02:00, so 01:00–01:59 happen twice: first in
summer time (BST), then in GMT. A form draws `which_reading` just under its date and time fields;
it asks only for such a time and returns the fold the services take (0 the first, 1 the second),
None otherwise. The spring hour that never happens is refused by the service with its reason.
"""

from datetime import date, time

import streamlit as st

from services import clock
from services.requests import TypedMoment

READINGS = {0: "The first, in summer time (BST)", 1: "The second, after the clocks went back (GMT)"}


def which_reading(day: date | None, clock_time: time | None, key: str) -> int | None:
    if day is None or clock_time is None or not clock.happens_twice(day, clock_time):
        st.session_state.pop(key, None)
        return None
    return st.radio(f"{clock_time:%H:%M} on {clock.format_date(day)} happened twice: which one?", list(READINGS),
                    format_func=READINGS.get, index=None, key=key, horizontal=True)


def when_it_happened(what: str, key: str) -> TypedMoment:
    """Date and 24-hour time fields for when something happened, starting at this minute (never 00:00),
    with the autumn question when it applies. Back-dating is allowed; the service refuses the future."""
    now = clock.to_london(clock.now())
    st.session_state.setdefault(f"{key}_on", now.date())
    st.session_state.setdefault(f"{key}_time", now.time().replace(second=0, microsecond=0))
    day_column, time_column = st.columns(2)
    on = day_column.date_input(f"Date {what}", key=f"{key}_on", format="DD/MM/YYYY")
    at = time_column.time_input(f"Time {what} (24-hour, UK time)", key=f"{key}_time", step=60)
    return TypedMoment(on, at, which_reading(on, at, f"{key}_fold"))
