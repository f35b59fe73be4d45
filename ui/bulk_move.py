"""Moving all of one person's open requests to colleagues (leave, leavers), confirmed in words once.

Always open (an expander closed itself on every choice): choose whose requests and who shares
them, read the confirmation that names how many go to whom, press once. The service refuses the
move if the number changed since the confirmation was drawn: the press carries the number drawn
on the button (bound when it was drawn, through its callback), not the number the rerun after the
press counts, which may already be different.
"""

from functools import partial

import streamlit as st
from sqlalchemy import Engine

from models import User
from services import db, requests
from services.errors import InputErrors
from ui.editing import attempt, form_round
from ui.format import plain

FORM = "bulk_move"
CONFIRMED = "bulk_move_confirmed"  # (from, to, count) as the confirmation pressed showed them


def _confirm(from_user: int, to_users: list[int], count: int) -> None:
    st.session_state[CONFIRMED] = (from_user, list(to_users), count)


def bulk_move(engine: Engine, user: User, staff: dict[int, str]) -> None:
    st.header("Move all of one person's open requests (leave, leavers)")
    confirmed = st.session_state.pop(CONFIRMED, None)
    turn = form_round(FORM)  # a fresh pair of boxes after each move
    from_column, to_column = st.columns(2)
    from_user = from_column.selectbox("Move the open requests of", list(staff), format_func=staff.get, index=None,
                                      placeholder="Choose a member of the team", key=f"move_from_{turn}")
    to_users = to_column.multiselect("Share them, soonest due first, between",
                                     [key for key in staff if key != from_user], format_func=staff.get,
                                     key=f"move_to_{turn}", placeholder="Choose one or more colleagues")
    if from_user is None or not to_users:
        st.caption("Choose whose requests move and who receives them; you confirm the numbers before anything moves.")
        return
    try:
        with db.reading(engine) as session:
            plan = requests.plan_reallocation(session, user, from_user, to_users)
    except InputErrors as refused:
        st.error(plain(" ".join(refused.errors.values())), icon=":material/error:")
        return
    if plan.count == 0:
        st.info(f"{staff[from_user]} has no open requests to move.")
        return
    st.warning(plain(f"This moves {plan.words()}."), icon=":material/swap_horiz:")
    st.button(f"Move {plan.count} {'request' if plan.count == 1 else 'requests'}", type="primary",
              key=f"move_confirm_{turn}", on_click=_confirm, args=(from_user, to_users, plan.count))
    if confirmed is not None:
        confirmed_from, confirmed_to, count = confirmed
        attempt(engine, user, partial(requests.reallocate_open_requests, expected_count=count), confirmed_from,
                confirmed_to, done=f"Moved {plan.words()}.", form=FORM)
