"""People the team works with: search while typing, likely duplicates, creating and viewing.

Every lookup is confined to the acting user's team and answered from an index:

- a name is matched by the prefix of its normalised keys (``services.matching.name_key``), so
  "obri" finds "O'Brien" and "siob" finds "Siobhán" — a range on ``(team_id, *_name_key)`` on
  SQLite and ``LIKE 'prefix%'`` on a ``text_pattern_ops`` index on PostgreSQL;
- an NHS number, a date of birth, a PNC or custody reference by equality.

A likely duplicate is a person with the same NHS number, or with the same date of birth and a
similar name (``matching.names_similar``: case, accents, apostrophes and hyphens ignored;
spellings that sound alike, one or two typing slips, nicknames, Welsh, Irish and Scottish forms and
names written in Arabic script accepted), or with a similar name where one of the two records has
no date of birth (found among people of the same family name key, so a family name spelt
differently is found only with the date of birth). Its precision and recall on labelled pairs are
measured by ``bench/name_pairs.py`` and held to floors by tests/test_people.py.
It is a prompt for a person to decide, never proof; creating a new person when one exists needs
the user's confirmation (``confirm_not_duplicate``).

Viewing a person's details is audited (``view_person``). Search results are minimal identifying
details shown to find the right record; they are not audited one by one.
"""

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, or_, true
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import Person, User
from models.codes import EthnicCategory, GenderIdentity, NhsNumberStatus
from models.people import COMMUNICATION_NEEDS_LIMIT, REFERENCE_LIMIT
from models.validators import (
    FieldError,
    date_of_birth,
    free_text,
    nhs_number,
    parse_uk_date,
    person_name,
    require_minimum_age,
)
from services import audit, clock, db, submissions
from services.errors import InputErrors
from services.matching import name_key, names_similar, search_tokens
from services.permissions import Permission, require, require_team_record

SEARCH_LIMIT = 20
# Rows fetched per indexed lookup before ranking; a name prefix of two letters can match
# thousands of people in a large team, and only the best few are shown.
CANDIDATE_LIMIT = 200
# People sharing one family name (Smith) in a large team, when no date of birth narrows them.
SAME_NAME_LIMIT = 2000
MINIMUM_SEARCH_LENGTH = 2
LANGUAGE_LIMIT = 60
# The largest code point: every string that starts with a prefix sorts before prefix + this
# under SQLite's binary collation (the key of a name never contains it).
_LAST_CHARACTER = "\U0010ffff"
_NHS_SEPARATORS = re.compile(r"[\s-]+")
_TEN_DIGITS = re.compile(r"[0-9]{10}")
_DATE_TOKEN = re.compile(r"[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{4}")
_ASCII_DIGIT = re.compile(r"[0-9]")

SAME_NHS_NUMBER = "same NHS number"
SAME_DATE_OF_BIRTH_SIMILAR_NAME = "same date of birth and similar name"
SIMILAR_NAME_NO_DATE_OF_BIRTH = "similar name; a date of birth is missing"
MATCHED_NAME = "name"
MATCHED_DATE_OF_BIRTH = "date of birth"
MATCHED_REFERENCE = "custody or PNC reference"


@dataclass(frozen=True)
class PersonMatch:
    """One person found, with the reasons they were offered (shown beside the name)."""

    person_id: int
    given_name: str
    family_name: str
    date_of_birth: date | None
    nhs_number: str | None
    pnc_reference: str | None
    custody_reference: str | None
    reasons: tuple[str, ...]

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass
class NewPerson:
    """A person as typed into a form. ``date_of_birth`` may be a date or the text typed (dd/mm/yyyy)."""

    given_name: str
    family_name: str
    date_of_birth: date | str | None = None
    nhs_number: str | None = None
    nhs_number_status: str | None = None  # why there is no number; ignored when one is given
    pnc_reference: str | None = None
    custody_reference: str | None = None
    gender_identity: str | None = None
    ethnic_category: str | None = None
    preferred_language: str | None = None
    communication_needs: str | None = None


# --- Search -----------------------------------------------------------------------------------


def _prefix(session: Session, column, prefix: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix``, in a form the dialect answers from an index."""
    if session.get_bind().dialect.name == "postgresql":
        return column.like(f"{prefix}%")  # keys hold no % or _: they are word separators
    return and_(column >= prefix, column < prefix + _LAST_CHARACTER)


def _match(person: Person, reasons: tuple[str, ...]) -> PersonMatch:
    return PersonMatch(
        person_id=person.id,
        given_name=person.given_name,
        family_name=person.family_name,
        date_of_birth=person.date_of_birth,
        nhs_number=person.nhs_number,
        pnc_reference=person.pnc_reference,
        custody_reference=person.custody_reference,
        reasons=reasons,
    )


def _as_nhs_number(text: str) -> str | None:
    digits = _NHS_SEPARATORS.sub("", text)
    return digits if _TEN_DIGITS.fullmatch(digits) else None


def _as_date(text: str) -> date | None:
    try:
        return parse_uk_date(text)
    except FieldError:
        return None


def _loosely_matches(token: str, words: list[str]) -> bool:
    """A typed word begins a word of the name, or is one slip or variant away from one."""
    return any(word.startswith(token) or names_similar("", token, "", word) for word in words)


def _split_query(text: str) -> tuple[date | None, str]:
    """A date of birth typed among the words ("smith 05/11/1990"), and the words left."""
    found = _DATE_TOKEN.search(text)
    if not found:
        return None, text
    day = _as_date(found.group())
    if day is None:
        return None, text
    return day, (text[: found.start()] + " " + text[found.end():]).strip()


def search_people(session: Session, user: User, text: str, limit: int = SEARCH_LIMIT) -> list[PersonMatch]:
    """People of the user's team matching what is typed so far, best first.

    ``text`` may be a name (or the start of one, in either order), a date of birth
    (dd/mm/yyyy), a name with a date of birth, an NHS number (spaces or hyphens allowed), or a
    custody or PNC reference. With a date of birth, names one slip or variant apart match too.
    """
    require(user, Permission.VIEW_PEOPLE)
    typed = (text or "").strip()
    if len(typed) < MINIMUM_SEARCH_LENGTH:
        return []
    team = Person.team_id == user.team_id
    # id -> (rank, family key, given key, reason): lookups read ids and keys only (from the
    # indexes); the few people shown are loaded at the end.
    found: dict[int, tuple[int, str, str, str]] = {}
    keyed = (Person.id, Person.family_name_key, Person.given_name_key)

    def offer(rows, rank: int, reason: str) -> None:
        for person_id, family_key, given_key in rows:
            if person_id not in found or found[person_id][0] > rank:
                found[person_id] = (rank, family_key, given_key, reason)

    nhs = _as_nhs_number(typed)
    if nhs:
        offer(session.execute(select(*keyed).where(team, Person.nhs_number == nhs)).all(), 0, "NHS number")
    if _ASCII_DIGIT.search(typed) and len(typed) <= REFERENCE_LIMIT:
        variants = list({typed, typed.upper(), typed.lower()})
        for reference in (Person.pnc_reference, Person.custody_reference):  # one index each, not an OR
            query = select(*keyed).where(team, reference.in_(variants)).limit(CANDIDATE_LIMIT)
            offer(session.execute(query).all(), 1, MATCHED_REFERENCE)

    born_on, name_text = _split_query(typed)
    tokens = search_tokens(name_text)
    if born_on is not None:
        query = select(*keyed).where(team, Person.date_of_birth == born_on).limit(CANDIDATE_LIMIT)
        for row in session.execute(query).all():
            words = f"{row.given_name_key} {row.family_name_key}".split()
            if all(_loosely_matches(token, words) for token in tokens):
                offer([row], 2, f"{MATCHED_DATE_OF_BIRTH} and {MATCHED_NAME}" if tokens else MATCHED_DATE_OF_BIRTH)
    elif tokens and not nhs:
        # Every typed word must begin some word of the name ("ap daf" finds "ap Dafydd"), and
        # one of them the given or the family name: one indexed range per such word and name
        # part (an OR of ranges would be read as a scan), each carrying every word's condition
        # so that the limit never hides a better match. Single letters only narrow.
        keys = (Person.family_name_key, Person.given_name_key)
        each_begins_a_word = [
            or_(*(condition for key in keys for condition in (_prefix(session, key, token), key.like(f"% {token}%"))))
            for token in tokens
        ]
        typed_key = " ".join(tokens)
        drivers = [token for token in tokens if len(token) > 1] or tokens
        for token in drivers:
            for key in keys:
                query = select(*keyed).where(team, _prefix(session, key, token), *each_begins_a_word)
                for row in session.execute(query.limit(CANDIDATE_LIMIT)).all():
                    exact = typed_key in (f"{row.given_name_key} {row.family_name_key}",
                                          f"{row.family_name_key} {row.given_name_key}")
                    offer([row], 3 if exact else 4, MATCHED_NAME)

    ranked = sorted(found.items(), key=lambda item: (*item[1][:3], item[0]))[:limit]
    loaded = {person.id: person for person in session.exec(
        select(Person).where(Person.id.in_([person_id for person_id, _ in ranked]))).all()}
    return [_match(loaded[person_id], (reason,)) for person_id, (_rank, _f, _g, reason) in ranked]


# --- Likely duplicates ------------------------------------------------------------------------


def _lenient_date(value: date | str | None) -> date | None:
    if isinstance(value, date):
        return value
    return _as_date(value) if value else None


def _lenient_nhs_number(value: str | None) -> str | None:
    try:
        return nhs_number(value)
    except FieldError:
        return None


def find_likely_duplicates(
    session: Session,
    user: User,
    given_name: str,
    family_name: str,
    date_of_birth: date | str | None = None,
    nhs_number: str | None = None,
    *,
    exclude_person_id: int | None = None,
) -> list[PersonMatch]:
    """People of the user's team who may be the person being typed in, with the reason each is.

    Called while someone types, so values that are not (yet) valid are ignored, not refused.
    """
    require(user, Permission.VIEW_PEOPLE)
    team = Person.team_id == user.team_id
    born_on = _lenient_date(date_of_birth)
    number = _lenient_nhs_number(nhs_number)
    found: dict[int, tuple[Person, list[str]]] = {}

    def offer(person: Person, reason: str) -> None:
        reasons = found.setdefault(person.id, (person, []))[1] if person.id != exclude_person_id else [reason]
        if reason not in reasons:
            reasons.append(reason)

    if number:
        for person in session.exec(select(Person).where(team, Person.nhs_number == number)).all():
            offer(person, SAME_NHS_NUMBER)
    has_name = bool(search_tokens(given_name) or search_tokens(family_name))
    if has_name and born_on is not None:
        query = select(Person).where(team, Person.date_of_birth == born_on).limit(CANDIDATE_LIMIT)
        for person in session.exec(query).all():
            if names_similar(given_name, family_name, person.given_name, person.family_name):
                offer(person, SAME_DATE_OF_BIRTH_SIMILAR_NAME)
    if has_name:
        # Without a date of birth on one side, a name that is the same once normalised (in
        # either order) is still worth a second look.
        # Compared by their keys (names_similar reads a key as it reads the name), read from the
        # family-name index alone; only the few similar people are loaded.
        family_key, given_key = name_key(family_name), name_key(given_name)
        undated = Person.date_of_birth.is_(None) if born_on is not None else true()
        similar_ids = []
        verdicts: dict[tuple[str, str], bool] = {}  # a common family name repeats its given names
        for same_name in (
            Person.family_name_key == family_key,
            and_(Person.family_name_key == given_key, Person.given_name_key == family_key),  # swapped
        ):
            query = select(Person.id, Person.given_name_key, Person.family_name_key).where(team, same_name, undated)
            for row in session.execute(query.limit(SAME_NAME_LIMIT)).all():
                pair = (row.given_name_key, row.family_name_key)
                if pair not in verdicts:
                    verdicts[pair] = names_similar(given_name, family_name, *pair)
                if verdicts[pair]:
                    similar_ids.append(row.id)
        for person in session.exec(select(Person).where(Person.id.in_(similar_ids))).all() if similar_ids else ():
            offer(person, SIMILAR_NAME_NO_DATE_OF_BIRTH)
    return [_match(person, tuple(reasons)) for person, reasons in found.values()]


# --- Create and view --------------------------------------------------------------------------


def _collect(errors: dict[str, str], check, *args, **kwargs):
    try:
        return check(*args, **kwargs)
    except FieldError as problem:
        errors.setdefault(problem.field, problem.message)
        return None


def _checked_date_of_birth(errors: dict[str, str], value: date | str | None, on: date) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    born_on = value if isinstance(value, date) else _collect(errors, parse_uk_date, value, "date_of_birth")
    if born_on is None:
        return None
    today = clock.today_in_london()
    if born_on > today:
        _collect(errors, date_of_birth, born_on, today)  # "cannot be after today"
        return None
    if born_on > on:
        errors["date_of_birth"] = (
            f"The request was received on {clock.format_date(on)}, before this date of birth "
            f"({clock.format_date(born_on)}). Check the date of birth and the date received."
        )
        return None
    if _collect(errors, date_of_birth, born_on, on) is None:
        return None
    return _collect(errors, require_minimum_age, born_on, on)


def validate_new_person(new: NewPerson, on: date, errors: dict[str, str]) -> dict:
    """The values of a new person ready to store; problems are added to ``errors`` by field.

    ``on`` is the contact date: the person must have been born, and be at least 10, by then.
    """
    values = {
        "given_name": _collect(errors, person_name, new.given_name, "given_name"),
        "family_name": _collect(errors, person_name, new.family_name, "family_name"),
        "date_of_birth": _checked_date_of_birth(errors, new.date_of_birth, on),
        "nhs_number": _collect(errors, nhs_number, new.nhs_number, "nhs_number"),
        "pnc_reference": _collect(errors, free_text, new.pnc_reference, "pnc_reference", REFERENCE_LIMIT) or None,
        "custody_reference": _collect(errors, free_text, new.custody_reference, "custody_reference",
                                      REFERENCE_LIMIT) or None,
        "preferred_language": _collect(errors, free_text, new.preferred_language, "preferred_language",
                                       LANGUAGE_LIMIT) or None,
        "communication_needs": _collect(errors, free_text, new.communication_needs, "communication_needs",
                                        COMMUNICATION_NEEDS_LIMIT) or None,
        "gender_identity": new.gender_identity or None,
        "ethnic_category": new.ethnic_category or None,
    }
    if values["gender_identity"] and values["gender_identity"] not in GenderIdentity.choices():
        errors["gender_identity"] = "Choose a gender identity from the list, or leave it empty."
    if values["ethnic_category"] and values["ethnic_category"] not in EthnicCategory.choices():
        errors["ethnic_category"] = "Choose an ethnic category from the list, or leave it empty."
    if values["nhs_number"]:
        values["nhs_number_status"] = NhsNumberStatus.PRESENT.value
    else:
        status = new.nhs_number_status or NhsNumberStatus.NOT_KNOWN.value
        if status not in NhsNumberStatus.choices() or status == NhsNumberStatus.PRESENT:
            errors["nhs_number_status"] = "Say why there is no NHS number: not known, declined or not traced."
        values["nhs_number_status"] = status
    return values


def _duplicate_message(matches: list[PersonMatch]) -> str:
    # Pages show this through markdown-rendering alerts, so it names no one: the picker lists
    # the people themselves as plain text.
    reasons = sorted({reason for match in matches for reason in match.reasons})
    someone = "1 person" if len(matches) == 1 else f"{len(matches)} people"
    return (
        f"{someone} already on record may be the same person ({'; '.join(reasons)}). Use them, or tick the box "
        "to confirm this is a different person."
    )


def create_person(
    session: Session,
    user: User,
    new: NewPerson,
    *,
    on: date | None = None,
    confirm_not_duplicate: bool = False,
    errors: dict[str, str] | None = None,
    submission: str | None = None,
) -> Person:
    """Add a person to the user's team, refusing bad values and unconfirmed likely duplicates.

    ``on`` is the contact date (default: today in London). ``errors`` lets a caller that checks
    its own fields too (logging a request) report every problem at once: problems found here
    are added to it, and InputErrors is raised with all of them. A second call with the same
    ``submission`` token returns the person the first one recorded.
    """
    db.require_writing(session)
    require(user, Permission.EDIT_PEOPLE)
    if (earlier := submissions.claim(session, user, submission, "person")) is not None:
        return session.get(Person, earlier)
    errors = {} if errors is None else errors
    values = validate_new_person(new, on or clock.today_in_london(), errors)
    if values["nhs_number"]:
        holder = session.exec(
            select(Person).where(Person.team_id == user.team_id, Person.nhs_number == values["nhs_number"])
        ).first()
        if holder is not None:
            errors["nhs_number"] = (
                "This NHS number is already recorded for another person in your team. Search for it and use "
                "that person."
            )
    if errors:
        raise InputErrors(errors)
    if not confirm_not_duplicate:
        likely = find_likely_duplicates(
            session, user, values["given_name"], values["family_name"], values["date_of_birth"], values["nhs_number"]
        )
        if likely:
            raise InputErrors({"confirm_new_person": _duplicate_message(likely)})
    person = Person(
        **values,
        team_id=user.team_id,
        given_name_key=name_key(values["given_name"]),
        family_name_key=name_key(values["family_name"]),
        updated_by_id=user.id,
    )
    session.add(person)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as clash:  # the same NHS number saved by someone else a moment ago
        raise InputErrors({"nhs_number": "This NHS number was recorded for another person just now. "
                                          "Search for it and use that person."}) from clash
    submissions.fulfil(session, submission, person.id)
    audit.record(session, user, "create_person", entity="person", entity_id=person.id,
                 detail="confirmed not a duplicate" if confirm_not_duplicate else None)
    return person


def person_in_team(session: Session, user: User, person_id: int) -> Person:
    """The person, when they belong to the user's team; no audit (use view_person to show details)."""
    require(user, Permission.VIEW_PEOPLE)
    # A missing id and another team's read the same and are audited the same (services/permissions.py).
    return require_team_record(user, session.get(Person, person_id), entity="person", entity_id=person_id)


def view_person(session: Session, user: User, person_id: int) -> Person:
    """A person's details for showing on screen; every view is written to the audit trail."""
    db.require_writing(session)
    person = person_in_team(session, user, person_id)
    audit.record(session, user, "view_person", entity="person", entity_id=person.id)
    return person


def describe(person: Person | PersonMatch) -> str:
    """One line to tell people apart: name, date of birth, NHS number (plain text, never markdown)."""
    parts = [f"{person.given_name} {person.family_name}"]
    born = clock.format_date(person.date_of_birth)
    parts.append(f"born {born}" if born else "date of birth not recorded")
    if person.nhs_number:
        parts.append(f"NHS {person.nhs_number[:3]} {person.nhs_number[3:6]} {person.nhs_number[6:]}")
    references = [reference for reference in (person.custody_reference, person.pnc_reference) if reference]
    if references:
        parts.append("ref " + ", ".join(references))
    return " · ".join(parts)
