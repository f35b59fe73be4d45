"""Starting a screening: from a waiting request (named by its reference) or for a person without one.

Every way in opens the draft itself (`?id=` on the Screening page): a request's existing draft is
continued rather than a second one started (services/screening.py `start_from_request`).
"""

import streamlit as st
from sqlalchemy import Engine

from models import User
from services import db, screening
from services.errors import InputErrors, ServiceError
from ui.format import plain
from ui.forms import FieldMessages, submission_done, submission_token
from ui.person_picker import clear_person_picker, person_picker

SCREENING_PAGE = "pages/5_Screening.py"
PICKER = "screening_person"


def open_draft(engine: Engine, user: User, operation, *args) -> None:
    """Start (or find) the draft and open it; a refusal is shown where the button was."""
    try:
        with st.spinner("Opening the screening…"), db.writing(engine) as session:
            draft = operation(session, user, *args)
    except ServiceError as refused:
        st.error(plain(" ".join(refused.errors.values()) if isinstance(refused, InputErrors) else str(refused)))
        return
    clear_person_picker(PICKER)
    st.switch_page(SCREENING_PAGE, query_params={"id": str(draft.id)})


def choose_what_to_screen(engine: Engine, user: User, request_id: int | None) -> None:
    with db.reading(engine) as session:
        waiting = {row.request_id: row for row in screening.requests_awaiting_screening(session, user)}
    st.header("Requests waiting for screening")
    if request_id in waiting:  # arrived from a request's page: name it, one press starts
        chosen = waiting[request_id]
        if st.button(plain(f"Start the screening for {chosen.label}"), type="primary"):
            open_draft(engine, user, screening.start_from_request, request_id)
    chosen_id = st.selectbox("Request", list(waiting), index=None, format_func=lambda rid: waiting[rid].label,
                             placeholder="Choose a request" if waiting else "No request is waiting for screening")
    if chosen_id is not None and st.button(plain(f"Start the screening for {waiting[chosen_id].label}")):
        open_draft(engine, user, screening.start_from_request, chosen_id)
    st.header("Or screen someone without a request")
    messages = FieldMessages()
    choice = person_picker(engine, user, messages, key=PICKER, question="Who are you screening?", allow_nobody=False)
    if choice.person_id is not None and st.button("Start screening for this person"):
        open_draft(engine, user, screening.start_for_person, choice.person_id)
    if choice.new_person is not None and st.button("Record this person and start screening"):
        try:
            with db.writing(engine) as session:
                draft = screening.start_for_new_person(session, user, choice.new_person,
                                                       confirm_not_duplicate=choice.confirm_new_person,
                                                       submission=submission_token(PICKER))
        except InputErrors as refused:
            messages.show(refused.errors)
        else:
            submission_done(PICKER)
            clear_person_picker(PICKER)
            st.switch_page(SCREENING_PAGE, query_params={"id": str(draft.id)})
