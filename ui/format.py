"""Formatting for the screen: dates dd/mm/yyyy, 24-hour London time, red/amber/green."""

import re

from services.clock import format_date, format_datetime, format_duration, format_time
from services.requests import CLOCK_WORDS

RAG_SYMBOLS = CLOCK_WORDS  # one set of words for the response clock: the screen's and the export's

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def plain(text: str) -> str:
    """Text that Streamlit's markdown elements (st.error, st.info…) show exactly as typed."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def sentence(text: str) -> str:
    """The text with its first letter a capital and nothing else changed (str.capitalize() would
    turn "complete full AUDIT" into "Complete full audit", and MAPPA into Mappa)."""
    return text[:1].upper() + text[1:]


def plural(count: int, one: str, many: str) -> str:
    """'1 request matches', '2 requests match': the count with the words that agree with it."""
    return f"{count:,} {one if count == 1 else many}"


__all__ = ["RAG_SYMBOLS", "plain", "plural", "sentence", "format_date", "format_datetime", "format_duration",
           "format_time"]
