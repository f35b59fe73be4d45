"""A record's id read from the page address (`?id=42`), for every page that opens one record.

Anything can be typed into an address. An id is taken only when it is a positive whole number that
fits the database's 64-bit integer columns, written in ASCII digits with nothing around it:
Python's `str.isdigit()` and `int()` also accept Arabic-Indic and full-width digits, `int()`
accepts spaces and underscores, and thirty nines made the database driver raise OverflowError.
Anything else gets one plain message and no id; the page then shows what it shows without one.
"""

import re

import streamlit as st

LARGEST_ID = 2**63 - 1  # PostgreSQL bigint and SQLite INTEGER; our id columns are never larger
NOT_A_RECORD_ID = (
    "The address does not point to a record: its id must be a whole number such as 42. "
    "Open the record from a list or a search instead."
)
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")  # 2**63 - 1 has 19 digits: longer is never an id


def parse_record_id(text: str | None) -> int | None:
    """The id in `text`, or None unless it is 1 to 2**63 - 1 in ASCII digits alone."""
    if text is None or not _ASCII_DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= LARGEST_ID else None


def record_id_from_query(name: str = "id") -> int | None:
    """The id in the address's `name` parameter; None when there is none or it is not an id.

    An id that is there but is not a record's id is refused with NOT_A_RECORD_ID, shown as an error.
    """
    text = st.query_params.get(name)
    if text is None or text == "":
        return None
    number = parse_record_id(text)
    if number is None:
        st.error(NOT_A_RECORD_ID, icon=":material/link_off:")
    return number
