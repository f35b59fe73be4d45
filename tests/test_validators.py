import contextlib
from datetime import date

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from models.validators import (
    EMAIL_LIMIT,
    NAME_LIMIT,
    FieldError,
    age_on,
    date_of_birth,
    email,
    format_nhs_number,
    free_text,
    is_valid_nhs_number,
    nhs_check_digit,
    nhs_number,
    parse_uk_date,
    person_name,
    phone,
    require_minimum_age,
    username,
)

FUZZ = settings(max_examples=1000, deadline=None, database=None)
CONTACT_DATE = date(2026, 3, 12)
ASCII_DIGITS = "0123456789"


def interleave(characters: str, separators: list[str]) -> str:
    """Each character followed by its separator; the last character has none."""
    return "".join(map(str.__add__, characters, [*separators[: len(characters) - 1], ""]))


def refusal(validator, *arguments, **keywords) -> FieldError:
    with pytest.raises(FieldError) as refused:
        validator(*arguments, **keywords)
    return refused.value


# NHS number ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("9434765919", True),
        ("9434765918", False),
        ("4010232137", True),
        ("9876544321", False),
        ("9991234560", False),
    ],
)
def test_nhs_number_vectors(digits, valid):
    assert is_valid_nhs_number(digits) is valid
    if valid:
        assert nhs_number(digits) == digits
    else:
        refusal(nhs_number, digits)


def test_check_digit_of_ten_has_no_valid_number():
    assert nhs_check_digit("999123456") is None
    message = refusal(nhs_number, "9991234560").message
    assert "check digit would be 10" in message


def test_check_digit_of_eleven_is_written_as_zero():
    # 9*10 + 4*9 + 2*8 + 0*7 + 8*6 + 0*5 + 9*4 + 3*3 + 9*2 = 253 = 11 * 23, so 11 - 0 = 11.
    assert nhs_check_digit("942080939") == 0
    assert nhs_number("9420809390") == "9420809390"


def test_check_digit_needs_nine_ascii_digits():
    with pytest.raises(ValueError):
        nhs_check_digit("９４３４７６５９１")


@pytest.mark.parametrize(
    "typed", ["943 476 5919", "943-476-5919", " 9434765919 ", "943 - 476 - 5919", "94 34 76 59 19"]
)
def test_nhs_number_accepts_spaces_and_hyphens(typed):
    assert nhs_number(typed) == "9434765919"


@pytest.mark.parametrize("typed", [None, "", "   ", "\t"])
def test_nhs_number_empty_is_none(typed):
    assert nhs_number(typed) is None


@pytest.mark.parametrize(("typed", "count"), [("943476591", 9), ("94347659190", 11), ("943 476 591", 9)])
def test_nhs_number_wrong_length_says_how_many(typed, count):
    error = refusal(nhs_number, typed, field="person_nhs_number")
    assert error.field == "person_nhs_number"
    assert error.message == f"NHS number must be 10 digits; you entered {count}."


@pytest.mark.parametrize("typed", ["943476591X", "NHS 9434765919", "943.476.5919", "943/476/5919"])
def test_nhs_number_refuses_letters_and_other_characters(typed):
    assert "only the digits 0 to 9" in refusal(nhs_number, typed).message


@pytest.mark.parametrize("typed", ["９４３４７６５９１９", "943476591\u0669", "\u0969434765919"])
def test_nhs_number_refuses_digits_that_are_not_ascii(typed):
    # Full-width, Arabic-Indic and Devanagari digits all pass Python's int() and \d.
    assert int(typed) > 0
    assert "ordinary digits 0 to 9" in refusal(nhs_number, typed).message


def test_format_nhs_number():
    assert format_nhs_number("9434765919") == "943 476 5919"
    with pytest.raises(ValueError):
        format_nhs_number("943476591")


def test_is_valid_nhs_number_refuses_non_digits_without_raising():
    assert not is_valid_nhs_number("943 476 5919")
    assert not is_valid_nhs_number("９４３４７６５９１９")
    assert not is_valid_nhs_number("")


nine_digits = st.text(alphabet=ASCII_DIGITS, min_size=9, max_size=9)
separators = st.lists(st.sampled_from(["", " ", "-", "  ", " - "]), min_size=9, max_size=9)


def valid_nhs_number(first_nine: str) -> str:
    check = nhs_check_digit(first_nine)
    assume(check is not None)
    return f"{first_nine}{check}"


@FUZZ
@given(st.one_of(st.text(), st.text(alphabet=ASCII_DIGITS + " -x９\u0660")))
def test_nhs_number_fuzz_only_field_errors(typed):
    try:
        digits = nhs_number(typed)
    except FieldError:
        return
    assert digits is None or is_valid_nhs_number(digits)


@FUZZ
@given(nine_digits, separators)
def test_nhs_number_fuzz_every_valid_number_accepted(first_nine, between):
    digits = valid_nhs_number(first_nine)
    typed = interleave(digits, between)
    assert nhs_number(typed) == digits


@FUZZ
@given(nine_digits, st.integers(0, 9), st.integers(1, 9))
def test_nhs_number_fuzz_any_single_mistyped_digit_refused(first_nine, position, change):
    digits = valid_nhs_number(first_nine)
    mistyped = str((int(digits[position]) + change) % 10)
    refusal(nhs_number, digits[:position] + mistyped + digits[position + 1 :])


@FUZZ
@given(nine_digits, st.integers(0, 8))
def test_nhs_number_fuzz_swapped_neighbours_refused(first_nine, position):
    digits = valid_nhs_number(first_nine)
    assume(digits[position] != digits[position + 1])
    swapped = digits[:position] + digits[position + 1] + digits[position] + digits[position + 2 :]
    refusal(nhs_number, swapped)


# E-mail and phone ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("sam.jones@nhs.net", "sam.jones@nhs.net"),
        ("  Sam.Jones@Example.NHS.UK ", "Sam.Jones@example.nhs.uk"),
        ("o'brien+custody@police.example.org", "o'brien+custody@police.example.org"),
    ],
)
def test_email_accepted(typed, stored):
    assert email(typed) == stored


@pytest.mark.parametrize("typed", [None, "", "  "])
def test_email_empty_is_none(typed):
    assert email(typed) is None


@pytest.mark.parametrize(
    ("typed", "complaint"),
    [
        ("sam.jones", "exactly one @"),
        ("sam@jones@nhs.net", "exactly one @"),
        ("@nhs.net", "before and after"),
        ("sam@", "before and after"),
        ("sam@nhsnet", "domain"),
        ("sam@nhs..net", "domain"),
        ("sam@.nhs.net", "domain"),
        ("sam jones@nhs.net", "spaces"),
        ("sam\x00@nhs.net", "U+0000"),
        ("s" * 250 + "@nhs.net", f"at most {EMAIL_LIMIT}"),
    ],
)
def test_email_refused(typed, complaint):
    assert complaint in refusal(email, typed).message


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("01702 123456", "01702 123456"),
        ("+44 (0)1702 123456", "+44 (0)1702 123456"),
        ("07700-900123", "07700-900123"),
        ("  07700   900123 ", "07700 900123"),
    ],
)
def test_phone_accepted(typed, stored):
    assert phone(typed) == stored


@pytest.mark.parametrize(
    ("typed", "complaint"),
    [
        ("01702 1234", "you entered 9"),
        ("0170212345678901", "you entered 16"),
        ("01702 123456 ext 4", 'remove "e"'),
        ("０１７０２ １２３４５６", "remove"),
        ("01702 +123456", "start"),
        ("0" * 10 + " " * 21 + "1", "at most 30"),
    ],
)
def test_phone_refused(typed, complaint):
    assert complaint in refusal(phone, typed).message


local_parts = st.text(alphabet="abcXYZ019._+-'", min_size=1, max_size=64)
domain_labels = st.lists(st.text(alphabet="abcdefXYZ0123-", min_size=1, max_size=20), min_size=2, max_size=4)


@FUZZ
@given(st.text())
def test_email_fuzz_only_field_errors(typed):
    try:
        stored = email(typed)
    except FieldError:
        return
    assert stored is None or (stored.count("@") == 1 and len(stored) <= EMAIL_LIMIT)


@FUZZ
@given(local_parts, domain_labels)
def test_email_fuzz_valid_accepted_and_broken_refused(local_part, labels):
    domain = ".".join(labels)
    assert email(f"{local_part}@{domain}") == f"{local_part}@{domain.lower()}"
    refusal(email, f"{local_part}{domain}")  # no @
    refusal(email, f"{local_part} @{domain}")  # a space
    refusal(email, f"{local_part}@{''.join(labels)}")  # no dot in the domain


phone_digits = st.text(alphabet=ASCII_DIGITS, min_size=10, max_size=15)
phone_separators = st.lists(st.sampled_from(["", " ", "-"]), min_size=14, max_size=14)


@FUZZ
@given(st.one_of(st.text(), st.text(alphabet=ASCII_DIGITS + " +()-x")))
def test_phone_fuzz_only_field_errors(typed):
    with contextlib.suppress(FieldError):
        phone(typed)


@FUZZ
@given(st.booleans(), phone_digits, phone_separators)
def test_phone_fuzz_valid_accepted(international, digits, between):
    typed = ("+" if international else "") + interleave(digits, between)
    stored = phone(typed)
    assert stored is not None
    assert stored.replace(" ", "") == typed.replace(" ", "")


@FUZZ
@given(st.one_of(st.text(ASCII_DIGITS, min_size=1, max_size=9), st.text(ASCII_DIGITS, min_size=16, max_size=30)))
def test_phone_fuzz_wrong_digit_count_refused(digits):
    assert "digits" in refusal(phone, digits).message


# Free text and names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "<script>alert('x')</script>",
        '=HYPERLINK("http://x","y")',
        "<b>bold</b> & <i>italic</i>",
        "+44 and -1 and @sum",
        "Line one\nline two\twith a tab\r\n",
        "Seen by 👮 in custody 🚓",
        "قال إنه بخير",
        "הוא אמר שהוא בסדר",
        "Mixed English and عربي text",
    ],
)
def test_free_text_kept_exactly(typed):
    assert free_text(typed, "reason", limit=500) == typed.strip()


def test_free_text_strips_outer_whitespace_only():
    assert free_text("  two  spaces  inside \n", "reason", limit=50) == "two  spaces  inside"


def test_free_text_empty():
    assert free_text("   ", "reason", limit=10) == ""
    assert free_text(None, "reason", limit=10) == ""
    assert refusal(free_text, " ", "reason", limit=10, required=True).message == (
        "Reason is required; please fill it in."
    )


def test_free_text_limit_says_the_limit_and_the_length():
    assert free_text("x" * 2000, "reason", limit=2000) == "x" * 2000
    error = refusal(free_text, "x" * 2003, "reason_for_request", limit=2000)
    assert error.field == "reason_for_request"
    assert error.message == ("Reason for request can be at most 2,000 characters; it is 2,003. Shorten it by 3.")


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f"])
def test_free_text_refuses_control_characters(character):
    error = refusal(free_text, f"before{character}after", "reason", limit=100)
    assert f"U+{ord(character):04X} at character 7" in error.message


@pytest.mark.parametrize(
    "name",
    ["O'Brien", "Siôn", "Nguyễn", "عمر", "דוד", "Smith-Jones", "Zoë 🌈", "D'Arcy-Łukasiewicz", "李小龍"],
)
def test_person_name_round_trips_unchanged(name):
    assert person_name(name, "given_name") == name
    assert person_name(f"  {name}\t", "given_name") == name


def test_person_name_required_and_limit():
    assert refusal(person_name, "  ", "family_name").message == ("Family name is required; please fill it in.")
    assert person_name("", "middle_names", required=False) == ""
    assert person_name("a" * NAME_LIMIT, "family_name") == "a" * NAME_LIMIT
    assert "at most 100 characters; it is 101" in refusal(person_name, "a" * 101, "family_name").message


@pytest.mark.parametrize(("character", "described"), [("\n", "a line break"), ("\t", "a tab"), ("\x00", "U+0000")])
def test_person_name_must_be_one_line(character, described):
    assert described in refusal(person_name, f"Mary{character}Jane", "given_name").message


def allowed_in_text(value: str) -> bool:
    return not any(ord(character) < 32 and character not in "\t\n\r" for character in value)


@FUZZ
@given(st.text(), st.integers(0, 40), st.booleans())
def test_free_text_fuzz_keeps_or_refuses(typed, limit, required):
    stripped = typed.strip()
    should_keep = len(stripped) <= limit and allowed_in_text(stripped) and (stripped or not required)
    try:
        kept = free_text(typed, "notes", limit=limit, required=required)
    except FieldError as error:
        assert not should_keep
        assert error.field == "notes"
        return
    assert should_keep
    assert kept == stripped


@FUZZ
@given(st.text(), st.booleans())
def test_person_name_fuzz_keeps_or_refuses(typed, required):
    stripped = typed.strip()
    one_line = all(ord(character) >= 32 for character in stripped)
    should_keep = len(stripped) <= 20 and one_line and (stripped or not required)
    try:
        kept = person_name(typed, "given_name", limit=20, required=required)
    except FieldError:
        assert not should_keep
        return
    assert should_keep
    assert kept == stripped


# Dates --------------------------------------------------------------------------------------


def test_date_of_birth_accepted():
    assert date_of_birth(date(1990, 11, 5), CONTACT_DATE) == date(1990, 11, 5)
    assert date_of_birth(date(1900, 1, 1), CONTACT_DATE) == date(1900, 1, 1)
    assert date_of_birth(CONTACT_DATE, CONTACT_DATE) == CONTACT_DATE


def test_date_of_birth_in_the_future_refused():
    error = refusal(date_of_birth, date(2026, 3, 13), CONTACT_DATE)
    assert error.field == "date_of_birth"
    assert error.message == (
        "Date of birth cannot be after 12/03/2026; you entered 13/03/2026. Check the day, month and year."
    )


def test_date_of_birth_before_1900_refused():
    message = refusal(date_of_birth, date(1899, 12, 31), CONTACT_DATE).message
    assert message == ("Date of birth cannot be before 01/01/1900; you entered 31/12/1899. Check the year.")


def test_date_of_birth_missing_refused():
    assert "required" in refusal(date_of_birth, None, CONTACT_DATE).message


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2016, 3, 12), date(2026, 3, 12), 10),
        (date(2016, 3, 13), date(2026, 3, 12), 9),
        (date(2000, 1, 1), date(2000, 1, 1), 0),
        # 29 February: a year older on 1 March in non-leap years, on 29 February in leap years.
        (date(2008, 2, 29), date(2018, 2, 28), 9),
        (date(2008, 2, 29), date(2018, 3, 1), 10),
        (date(2008, 2, 29), date(2028, 2, 28), 19),
        (date(2008, 2, 29), date(2028, 2, 29), 20),
    ],
)
def test_age_on(born, on, age):
    assert age_on(born, on) == age


def test_age_on_before_birth_is_a_programming_error():
    with pytest.raises(ValueError):
        age_on(date(2000, 1, 2), date(2000, 1, 1))


def test_under_ten_refused_with_the_age_and_the_reason():
    error = refusal(require_minimum_age, date(2016, 3, 13), CONTACT_DATE, "date_of_birth")
    assert error.message == (
        "The person was 9 on 12/03/2026; the age of criminal responsibility is 10 — check the date of birth."
    )
    assert require_minimum_age(date(2016, 3, 12), CONTACT_DATE) == date(2016, 3, 12)


def test_minimum_age_other_than_ten():
    message = refusal(require_minimum_age, date(2010, 1, 1), CONTACT_DATE, minimum=18).message
    assert "was 16 on 12/03/2026; the minimum age is 18" in message


def test_contact_before_birth_refused():
    message = refusal(require_minimum_age, date(2026, 4, 1), CONTACT_DATE).message
    assert message.startswith("Date of birth cannot be after 12/03/2026")


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("05/11/1990", date(1990, 11, 5)),
        ("5/11/1990", date(1990, 11, 5)),
        (" 29/02/2024 ", date(2024, 2, 29)),
        ("29/02/2000", date(2000, 2, 29)),
        ("31.12.1999", date(1999, 12, 31)),
        ("01-01-1900", date(1900, 1, 1)),
    ],
)
def test_parse_uk_date(typed, parsed):
    assert parse_uk_date(typed) == parsed


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("29/02/2023", "29/02/2023 does not exist: 2023 is not a leap year, so February has 28 days. Check the date."),
        ("29/02/1900", "29/02/1900 does not exist: 1900 is not a leap year, so February has 28 days. Check the date."),
        ("31/04/2024", "31/04/2024 does not exist: April 2024 has days 1 to 30. Check the date."),
        ("00/01/2024", "00/01/2024 does not exist: January 2024 has days 1 to 31. Check the date."),
        ("12/13/2024", "There is no month 13; write the day first, then the month (dd/mm/yyyy)."),
        ("01/01/0000", "There is no year 0000; check the year."),
    ],
)
def test_parse_uk_date_impossible_dates(typed, message):
    assert refusal(parse_uk_date, typed, field="date_of_birth").message == message


@pytest.mark.parametrize(
    "typed", ["1990-11-05", "05/11/90", "05/11-1990", "5 Nov 1990", "０５/１１/１９９０", "05/11/1990x", ""]
)
def test_parse_uk_date_refuses_other_formats(typed):
    assert "dd/mm/yyyy" in refusal(parse_uk_date, typed, field="date_of_birth").message


@FUZZ
@given(st.one_of(st.text(), st.text(alphabet=ASCII_DIGITS + "/.-")))
def test_parse_uk_date_fuzz_only_field_errors(typed):
    with contextlib.suppress(FieldError):
        parse_uk_date(typed)


@FUZZ
@given(st.dates(), st.sampled_from("/.-"), st.booleans())
def test_parse_uk_date_fuzz_every_real_date_accepted(day, separator, padded):
    width = 2 if padded else 1
    typed = separator.join([f"{day.day:0{width}d}", f"{day.month:0{width}d}", f"{day.year:04d}"])
    assert parse_uk_date(typed) == day


@FUZZ
@given(st.integers(1, 9999), st.integers(1, 12), st.integers(29, 99))
def test_parse_uk_date_fuzz_days_past_the_month_end_refused(year, month, day):
    try:
        real = date(year, month, day)
    except ValueError:
        real = None
    if real is None:
        assert "does not exist" in refusal(parse_uk_date, f"{day}/{month:02d}/{year:04d}").message
    else:
        assert parse_uk_date(f"{day}/{month:02d}/{year:04d}") == real


# Usernames ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "stored"), [(" jo.bloggs ", "jo.bloggs"), ("Siôn.ap-Rhys", "Siôn.ap-Rhys"),
                                               ("a.b@nhs.net", "a.b@nhs.net"), ("u" * 64, "u" * 64)])
def test_usernames_are_kept_as_typed(typed, stored):
    assert username(typed) == stored


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "Username is required"),
        ("jo bloggs", "a space at character 3"),
        ("jo\u00a0bloggs", "U+00A0"),  # a no-break space looks like a space and is one
        ("jo\u202ebloggs", "the hidden character U+202E"),  # right-to-left override
        ("jo\u200bbloggs", "the hidden character U+200B"),  # zero-width space
        ("jo\x07", "the hidden character U+0007"),
        ("jo\tbloggs", "a tab"),
        ("u" * 65, "at most 64 characters; it is 65"),
    ],
)
def test_usernames_with_spaces_hidden_characters_or_too_long_are_refused(typed, says):
    with pytest.raises(FieldError) as refused:
        username(typed)
    assert says in refused.value.message
