"""Server-side checks for the values people type into the app.

Streamlit's ``required=`` and ``max_chars`` run only in the browser, so every value is checked
again here before anything is written. Each validator takes what the user typed and returns the
normalised value, or raises :class:`FieldError` whose message (UK English) says what is wrong and
how to put it right; the page shows it next to the field and keeps what was typed.

Free text and names are stored exactly as typed apart from outer whitespace: HTML, formulas,
emoji and right-to-left scripts are data, made safe where they are shown or exported, not here.
"""

import calendar
import re
from datetime import date

AGE_OF_CRIMINAL_RESPONSIBILITY = 10
EARLIEST_DATE_OF_BIRTH = date(1900, 1, 1)
NAME_LIMIT = 100
EMAIL_LIMIT = 254
USERNAME_LIMIT = 64
PHONE_LIMIT = 30
PHONE_MINIMUM_DIGITS = 10
PHONE_MAXIMUM_DIGITS = 15
NHS_NUMBER_LENGTH = 10
NHS_NUMBER_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
EXAMPLE_DATE = "05/11/1990"
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

# Python's \d, str.isdigit() and int() also accept full-width and other non-ASCII digits, so
# digits are matched by the explicit ASCII range only.
_ASCII_DIGITS = re.compile(r"[0-9]+")
_NOT_ASCII_DIGIT = re.compile(r"[^0-9]")
_NHS_NUMBER_SEPARATORS = re.compile(r"[\s-]+")
_NOT_PHONE_CHARACTER = re.compile(r"[^0-9 +()\-]")
_UK_DATE = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4})")
# XML, and so the Excel export, cannot hold C0 control characters other than tab, line feed and
# carriage return; a lone surrogate cannot be encoded as UTF-8 for the database.
_FORBIDDEN_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# Names, e-mail addresses and phone numbers are one line, so tabs and line breaks are refused too.
_FORBIDDEN_ON_ONE_LINE = re.compile(r"[\x00-\x1f\ud800-\udfff]")
_CHARACTER_NAMES = {"\t": "a tab", "\n": "a line break", "\r": "a line break"}


class FieldError(ValueError):
    """A value typed into ``field`` was refused; ``message`` is shown next to that field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _label(field: str) -> str:
    """The words a user sees for a field key: "given_name" becomes "Given name"."""
    words = field.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _describe(character: str) -> str:
    """Name a character in a message; invisible ones by code point so that they can be found."""
    if character in _CHARACTER_NAMES:
        return _CHARACTER_NAMES[character]
    if character.isprintable():
        return f'"{character}"'
    return f"the hidden character U+{ord(character):04X}"


def _format_date(day: date) -> str:
    """dd/mm/yyyy, zero-padded even for years before 1000 (strftime does not pad those)."""
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def _refuse_forbidden_characters(value: str, field: str, forbidden: re.Pattern[str]) -> None:
    found = forbidden.search(value)
    if found:
        raise FieldError(
            field,
            f"{_label(field)} contains {_describe(found.group())} at character "
            f"{found.start() + 1:,}, which cannot be stored. Delete it, or type the text "
            "again instead of pasting it.",
        )


def _refuse_over_limit(value: str, field: str, limit: int) -> None:
    if len(value) > limit:
        raise FieldError(
            field,
            f"{_label(field)} can be at most {limit:,} characters; it is {len(value):,}. "
            f"Shorten it by {len(value) - limit:,}.",
        )


def _checked_text(text: str | None, field: str, limit: int, required: bool, forbidden: re.Pattern[str],
                  label: str | None = None) -> str:
    value = (text or "").strip()
    if not value:
        if required:
            raise FieldError(field, f"{label or _label(field)} is required; please fill it in.")
        return ""
    _refuse_over_limit(value, field, limit)
    _refuse_forbidden_characters(value, field, forbidden)
    return value


def free_text(text: str | None, field: str, limit: int, required: bool = False, *, label: str | None = None) -> str:
    """Text stored as typed, without its outer whitespace; "" when empty and not required.

    Tabs and line breaks are kept; other control characters are refused. `label` is the field's
    name on screen when it is not the field key in words ("summary" is "Advice given…").
    """
    return _checked_text(text, field, limit, required, _FORBIDDEN_IN_TEXT, label)


def person_name(text: str | None, field: str, limit: int = NAME_LIMIT, required: bool = True) -> str:
    """A name as the person gives it, in any script, without its outer whitespace.

    Apostrophes, hyphens, accents and emoji are kept; names are never re-cased or
    re-normalised, so "Siôn" comes back exactly as typed. A name must be on one line.
    """
    return _checked_text(text, field, limit, required, _FORBIDDEN_ON_ONE_LINE)


def username(text: str | None, field: str = "username", limit: int = USERNAME_LIMIT) -> str:
    """A sign-in name: one word of visible characters (letters of any script, digits, ``.``, ``-``,
    ``_``, ``@``…), without its outer whitespace. Spaces and invisible characters (control and
    formatting characters such as a right-to-left override) are refused: two usernames that look the
    same on the Users page or in the audit log must be the same username."""
    value = _checked_text(text, field, limit, True, _FORBIDDEN_ON_ONE_LINE)
    for position, character in enumerate(value, start=1):
        if character.isspace() or not character.isprintable():
            shown = "a space" if character.isspace() and character.isprintable() else _describe(character)
            raise FieldError(
                field,
                f"{_label(field)} contains {shown} at character {position:,}; a username is one word "
                "with no spaces or hidden characters, such as jo.bloggs.",
            )
    return value


# NHS number ---------------------------------------------------------------------------------


def nhs_check_digit(first_nine: str) -> int | None:
    """The modulus-11 check digit for the first nine digits of an NHS number.

    None when the check would be 10: no valid NHS number begins with those nine digits.
    """
    if len(first_nine) != NHS_NUMBER_LENGTH - 1 or not _ASCII_DIGITS.fullmatch(first_nine):
        raise ValueError(f"expected nine ASCII digits, not {first_nine!r}")
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, NHS_NUMBER_WEIGHTS, strict=True))
    check = (11 - total % 11) % 11  # a check of 11 is written as 0
    return None if check == 10 else check


def is_valid_nhs_number(digits: str) -> bool:
    """True for ten ASCII digits whose last digit is the check digit of the other nine."""
    if len(digits) != NHS_NUMBER_LENGTH or not _ASCII_DIGITS.fullmatch(digits):
        return False
    return nhs_check_digit(digits[:-1]) == int(digits[-1])


def format_nhs_number(digits: str) -> str:
    """Ten digits shown the NHS way, in groups of 3, 3 and 4: "943 476 5919"."""
    if len(digits) != NHS_NUMBER_LENGTH or not _ASCII_DIGITS.fullmatch(digits):
        raise ValueError(f"expected ten ASCII digits, not {digits!r}")
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def _refuse_non_digit_in_nhs_number(digits: str, field: str) -> None:
    found = _NOT_ASCII_DIGIT.search(digits)
    if not found:
        return
    character = found.group()
    if character.isdigit():
        raise FieldError(
            field,
            f"NHS number must be typed with the ordinary digits 0 to 9; {_describe(character)} "
            "only looks like a digit (it may be a full-width digit). Type the number again.",
        )
    raise FieldError(
        field,
        "NHS number can contain only the digits 0 to 9, with spaces or hyphens between groups; "
        f"remove {_describe(character)}.",
    )


def nhs_number(text: str | None, field: str = "nhs_number") -> str | None:
    """The ten digits of a valid NHS number, or None when nothing was typed.

    Spaces and hyphens between digits are accepted ("943 476 5919", "943-476-5919").
    """
    if text is None or not text.strip():
        return None
    digits = _NHS_NUMBER_SEPARATORS.sub("", text)
    _refuse_non_digit_in_nhs_number(digits, field)
    if len(digits) != NHS_NUMBER_LENGTH:
        raise FieldError(field, f"NHS number must be 10 digits; you entered {len(digits)}.")
    if nhs_check_digit(digits[:-1]) is None:
        raise FieldError(
            field,
            f"No NHS number can begin {format_nhs_number(digits)[:-1]} (its check digit would "
            "be 10), so a digit has been mistyped. Check the number against the person's records.",
        )
    if not is_valid_nhs_number(digits):
        raise FieldError(
            field,
            "This is not a valid NHS number: the last digit (the check digit) does not match the "
            "other nine. Check each digit against the person's records.",
        )
    return digits


# Contact details ----------------------------------------------------------------------------


def email(text: str | None, field: str = "email") -> str | None:
    """An e-mail address with its domain in lower case, or None when nothing was typed."""
    value = (text or "").strip()
    if not value:
        return None
    if len(value) > EMAIL_LIMIT:
        raise FieldError(field, f"Email address can be at most {EMAIL_LIMIT} characters; it is {len(value):,}.")
    if any(character.isspace() for character in value):
        raise FieldError(field, "Email address cannot contain spaces; remove them.")
    _refuse_forbidden_characters(value, field, _FORBIDDEN_ON_ONE_LINE)
    if value.count("@") != 1:
        raise FieldError(field, "Email address must contain exactly one @, as in name@example.nhs.uk.")
    local_part, domain = value.split("@")
    if not local_part or not domain:
        raise FieldError(field, "Email address needs text before and after the @, as in name@example.nhs.uk.")
    if not all(domain.split(".")) or "." not in domain:
        raise FieldError(
            field,
            "The part of the email address after the @ must be a domain such as nhs.net: words joined by single dots.",
        )
    # The part before the @ may be case-sensitive; the domain never is.
    return f"{local_part}@{domain.lower()}"


def phone(text: str | None, field: str = "phone") -> str | None:
    """A phone number as typed with runs of spaces made single, or None when nothing was typed."""
    value = (text or "").strip()
    if not value:
        return None
    if len(value) > PHONE_LIMIT:
        raise FieldError(field, f"Phone number can be at most {PHONE_LIMIT} characters; it is {len(value):,}.")
    found = _NOT_PHONE_CHARACTER.search(value)
    if found:
        raise FieldError(
            field,
            "Phone number can contain only the digits 0 to 9, spaces, +, brackets and hyphens; "
            f"remove {_describe(found.group())}.",
        )
    if "+" in value[1:]:
        raise FieldError(field, "A + can only come at the start of a phone number, as in +44 1702 123456.")
    digit_count = len(_NOT_ASCII_DIGIT.sub("", value))
    if not PHONE_MINIMUM_DIGITS <= digit_count <= PHONE_MAXIMUM_DIGITS:
        raise FieldError(
            field,
            f"Phone number must have {PHONE_MINIMUM_DIGITS} to {PHONE_MAXIMUM_DIGITS} digits, "
            f"including the area code; you entered {digit_count}.",
        )
    return " ".join(value.split())


# Dates --------------------------------------------------------------------------------------


def _impossible_day(day: int, month: int, year: int, days_in_month: int) -> str:
    if (day, month) == (29, 2):
        return f"29/02/{year:04d} does not exist: {year} is not a leap year, so February has 28 days. Check the date."
    return (
        f"{day:02d}/{month:02d}/{year:04d} does not exist: {MONTH_NAMES[month - 1]} {year} has "
        f"days 1 to {days_in_month}. Check the date."
    )


def parse_uk_date(text: str | None, field: str = "date") -> date:
    """A date typed day first as dd/mm/yyyy; single-digit days and months, "." or "-" also do."""
    value = (text or "").strip()
    if not value:
        raise FieldError(field, f"{_label(field)} is required; enter it as dd/mm/yyyy, e.g. {EXAMPLE_DATE}.")
    match = _UK_DATE.fullmatch(value)
    if not match:
        raise FieldError(
            field,
            f"{_label(field)} must be written day first as dd/mm/yyyy, with the year in full, e.g. {EXAMPLE_DATE}.",
        )
    day, month, year = int(match[1]), int(match[3]), int(match[4])
    if not 1 <= month <= 12:
        raise FieldError(field, f"There is no month {month}; write the day first, then the month (dd/mm/yyyy).")
    if year == 0:
        raise FieldError(field, "There is no year 0000; check the year.")
    days_in_month = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days_in_month:
        raise FieldError(field, _impossible_day(day, month, year, days_in_month))
    return date(year, month, day)


def _checked_date_of_birth(value: date | None, on: date, field: str) -> date:
    if value is None:
        raise FieldError(field, f"Date of birth is required; enter it as dd/mm/yyyy, e.g. {EXAMPLE_DATE}.")
    if value > on:
        raise FieldError(
            field,
            f"Date of birth cannot be after {_format_date(on)}; you entered "
            f"{_format_date(value)}. Check the day, month and year.",
        )
    if value < EARLIEST_DATE_OF_BIRTH:
        raise FieldError(
            field,
            f"Date of birth cannot be before {_format_date(EARLIEST_DATE_OF_BIRTH)}; you entered "
            f"{_format_date(value)}. Check the year.",
        )
    return value


def date_of_birth(value: date | None, on: date, field: str = "date_of_birth") -> date:
    """A date of birth no later than ``on`` (today, or the contact date) and not before 1900."""
    return _checked_date_of_birth(value, on, field)


def age_on(date_of_birth: date, on: date) -> int:
    """Age in whole years on the date ``on``.

    Someone born on 29 February becomes a year older on 1 March in a non-leap year (the reading
    usually taken in England and Wales), so on 28 February they are still the younger age.
    """
    if on < date_of_birth:
        raise ValueError(f"{on} is before the date of birth {date_of_birth}")
    had_birthday = (on.month, on.day) >= (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - (not had_birthday)


def require_minimum_age(
    date_of_birth: date,
    on: date,
    field: str = "date_of_birth",
    minimum: int = AGE_OF_CRIMINAL_RESPONSIBILITY,
) -> date:
    """The date of birth, refused when the person was younger than ``minimum`` on ``on``.

    A child under 10 cannot be dealt with by the criminal courts, so such an age almost always
    means a mistyped date of birth and must never be accepted silently.
    """
    _checked_date_of_birth(date_of_birth, on, field)
    age = age_on(date_of_birth, on)
    if age < minimum:
        reason = (
            f"the age of criminal responsibility is {AGE_OF_CRIMINAL_RESPONSIBILITY}"
            if minimum == AGE_OF_CRIMINAL_RESPONSIBILITY
            else f"the minimum age is {minimum}"
        )
        raise FieldError(
            field,
            f"The person was {age} on {_format_date(on)}; {reason} — check the date of birth.",
        )
    return date_of_birth
