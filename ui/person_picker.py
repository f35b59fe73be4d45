"""The person picker: find someone already on record while typing, or record a new person.

Used by the log-request form and the screening form. It sits outside any ``st.form`` (a form
would hold back the live search) and keeps its state under its own ``key``:

    choice = person_picker(engine, user, messages, key="person")
    ...  # on submit: choice.person_id, or choice.new_person with choice.confirm_new_person
    clear_person_picker("person")  # after a successful save

While a new person is typed, people already on record who may be the same person (same NHS
number; same date of birth and a similar name) are shown with a button to use them instead;
creating the new person then needs the confirmation box ticked (the service checks it again).
Names and other typed values are shown with ``st.text``, never as markdown.
"""

from dataclasses import dataclass

import streamlit as st
from sqlalchemy import Engine

from models import User
from models.codes import GenderIdentity, NhsNumberStatus
from models.organisation import NAME_LIMIT
from models.people import REFERENCE_LIMIT
from services import db, people
from services.errors import PermissionDenied
from services.people import NewPerson, PersonMatch
from ui.forms import FieldMessages

FIND = "Find a person on record"
NEW = "Record a new person"
NOBODY = "No one: a general advice request"
USE = "Use this person"
SEARCH_LABEL = "Search by name, date of birth (dd/mm/yyyy), NHS number, or custody or PNC reference"
CONFIRM_LABEL = "None of these is the same person: record a new person"
NO_NUMBER_REASONS = [status.value for status in NhsNumberStatus if status != NhsNumberStatus.PRESENT]


@dataclass(frozen=True)
class PersonChoice:
    person_id: int | None = None
    new_person: NewPerson | None = None
    confirm_new_person: bool = False
    problem: str | None = None  # nothing usable chosen yet: say so next to the picker


def _keys(key: str) -> dict[str, str]:
    names = ("mode", "search", "chosen", "chosen_text", "given", "family", "born", "nhs", "nhs_status", "pnc",
             "custody", "gender", "confirm")
    return {name: f"{key}_{name}" for name in names}


def person_picker_keys(key: str = "person") -> list[str]:
    """The session-state keys of everything typed or chosen in the picker (for drafts)."""
    return list(_keys(key).values())


def person_picker_blank(key: str = "person") -> dict:
    """What the picker's typed fields hold when nothing has been typed (its choices have defaults)."""
    keys = _keys(key)
    return {keys[name]: "" for name in ("search", "given", "family", "born", "nhs", "pnc", "custody")} | {
        keys["chosen"]: None, keys["gender"]: None}


def person_picker_fresh(key: str = "person") -> dict:
    """Every field of a fresh picker, to set before it is drawn so that the browser shows it fresh too.

    (Deleting the keys, as `clear_person_picker` does, starts the server afresh, but a picker still
    on screen would keep showing, and sending back, what was typed.)
    """
    keys = _keys(key)
    return person_picker_blank(key) | {keys["mode"]: FIND, keys["nhs_status"]: NO_NUMBER_REASONS[0],
                                       keys["confirm"]: False}


def clear_person_picker(key: str = "person") -> None:
    """Forget the choice and everything typed (after a successful save)."""
    keys = _keys(key)
    for name in list(st.session_state.keys()):
        if name in keys.values() or str(name).startswith(f"{key}_use_"):
            del st.session_state[name]


def _use(engine: Engine, user: User, key: str, person_id: int) -> None:
    """Button callback: choose a person. Showing their details is a view, so it is audited."""
    keys = _keys(key)
    try:
        with db.writing(engine) as session:
            person = people.view_person(session, user, person_id)
    except PermissionDenied:
        st.session_state[keys["chosen_text"]] = None
        return
    st.session_state[keys["chosen"]] = person.id
    st.session_state[keys["chosen_text"]] = people.describe(person)


def _choose_again(key: str) -> None:
    keys = _keys(key)
    st.session_state.pop(keys["chosen"], None)
    st.session_state.pop(keys["chosen_text"], None)


def _offer(engine: Engine, user: User, key: str, matches: list[PersonMatch], use_label: str = USE) -> None:
    for match in matches:
        line = st.container(border=True)
        line.text(people.describe(match) + f"  —  {', '.join(match.reasons)}")
        line.button(use_label, key=f"{key}_use_{match.person_id}", on_click=_use,
                    args=(engine, user, key, match.person_id))


def _find(engine: Engine, user: User, key: str, use_label: str) -> None:
    keys = _keys(key)
    typed = st.text_input(SEARCH_LABEL, key=keys["search"], type="search", live=True, max_chars=120,
                          placeholder="e.g. OBrien, Siobhan 05/11/1990, 943 476 5919")
    if len((typed or "").strip()) < people.MINIMUM_SEARCH_LENGTH:
        st.caption("Type at least two characters. Names match from their beginning; accents, apostrophes "
                   "and hyphens do not matter.")
        return
    with db.reading(engine) as session:
        matches = people.search_people(session, user, typed)
    if not matches:
        st.info("No one on record matches. Check the spelling, try the date of birth, or record a new person.")
        return
    st.caption(f"{len(matches)} found" + (" (the closest; type more to narrow)" if len(matches) == people.SEARCH_LIMIT
                                          else ""))
    _offer(engine, user, key, matches, use_label)


def _new(engine: Engine, user: User, key: str, messages: FieldMessages) -> PersonChoice:
    keys = _keys(key)
    given_column, family_column = st.columns(2)
    with given_column:
        given = st.text_input("Given name", key=keys["given"], help=f"Up to {NAME_LIMIT} characters.")
        messages.under("given_name")
    with family_column:
        family = st.text_input("Family name", key=keys["family"], help=f"Up to {NAME_LIMIT} characters.")
        messages.under("family_name")
    born_column, nhs_column, status_column = st.columns(3)
    with born_column:
        born = st.text_input("Date of birth (dd/mm/yyyy)", key=keys["born"], max_chars=10, placeholder="05/11/1990")
        messages.under("date_of_birth")
    with nhs_column:
        nhs = st.text_input("NHS number (if known)", key=keys["nhs"], max_chars=14, placeholder="943 476 5919")
        messages.under("nhs_number")
    with status_column:
        status = st.selectbox("If there is no NHS number: why", NO_NUMBER_REASONS, key=keys["nhs_status"],
                              format_func=NhsNumberStatus.label_of)
        messages.under("nhs_number_status")
    pnc_column, custody_column, gender_column = st.columns(3)
    with pnc_column:
        pnc = st.text_input("PNC reference", key=keys["pnc"], help=f"Up to {REFERENCE_LIMIT} characters.")
        messages.under("pnc_reference")
    with custody_column:
        custody = st.text_input("Custody reference", key=keys["custody"], help=f"Up to {REFERENCE_LIMIT} characters.")
        messages.under("custody_reference")
    with gender_column:
        gender = st.selectbox("Gender identity (optional)", GenderIdentity.choices(), index=None, key=keys["gender"],
                              format_func=GenderIdentity.label_of, placeholder="Not recorded")
        messages.under("gender_identity")
    confirmed = False
    if (given or "").strip() or (family or "").strip():
        with db.reading(engine) as session:
            likely = people.find_likely_duplicates(session, user, given or "", family or "", born, nhs)
        if likely:
            st.warning("This may be someone already on record. Use them if it is the same person.",
                       icon=":material/group:")
            _offer(engine, user, key, likely)
            confirmed = st.checkbox(CONFIRM_LABEL, key=keys["confirm"])
    messages.under("confirm_new_person")
    new_person = NewPerson(given_name=given or "", family_name=family or "", date_of_birth=born or None,
                           nhs_number=nhs or None, nhs_number_status=status, pnc_reference=pnc or None,
                           custody_reference=custody or None, gender_identity=gender)
    return PersonChoice(new_person=new_person, confirm_new_person=confirmed)


def person_picker(engine: Engine, user: User, messages: FieldMessages, *, key: str = "person",
                  question: str = "Who is the request about?", allow_nobody: bool = True,
                  use_label: str = USE) -> PersonChoice:
    """Draw the picker and return what it holds now (see PersonChoice).

    ``allow_nobody`` offers "No one" (a general advice request); the screening form turns it off.
    ``use_label`` names what choosing a search result does (the People page opens the record).
    """
    keys = _keys(key)
    chosen = st.session_state.get(keys["chosen"])
    if chosen is not None:
        st.text(f"Person: {st.session_state.get(keys['chosen_text'], '')}")
        st.button("Choose someone else", key=f"{key}_again", on_click=_choose_again, args=(key,))
        messages.under("person")
        return PersonChoice(person_id=chosen)
    modes = [FIND, NEW, NOBODY] if allow_nobody else [FIND, NEW]
    mode = st.radio(question, modes, key=keys["mode"], horizontal=True)
    messages.under("person")
    if mode == NOBODY:
        return PersonChoice()
    if mode == NEW:
        return _new(engine, user, key, messages)
    _find(engine, user, key, use_label)
    return PersonChoice(problem="Choose a person from the search results (Use this person) or record a new person"
                                + (", or choose 'No one' for a general advice request." if allow_nobody else "."))
