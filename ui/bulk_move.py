"""Moving all of one person's open requests to colleagues (leave, leavers), confirmed in words once.

Always open (an expander closed itself on every choice): choose whose requests and who shares
them, read the confirmation that names how many go to whom, press once. The service refuses the
move if the number changed since the confirmation was drawn.
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


def bulk_move(engine: Engine, user: User, staff: dict[int, str]) -> None:
    st.subheader("Move all of one person's open requests (leave, leavers)")
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
    if st.button(f"Move {plan.count} {'request' if plan.count == 1 else 'requests'}", type="primary",
                 key=f"move_confirm_{turn}"):
        attempt(engine, user, partial(requests.reallocate_open_requests, expected_count=plan.count), from_user,
                to_users, done=f"Moved {plan.words()}.", form=FORM)
