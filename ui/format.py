"""Formatting for the screen: dates dd/mm/yyyy, 24-hour London time, red/amber/green."""

import re

from services.clock import format_date, format_datetime, format_duration, format_time

RAG_SYMBOLS = {"red": "🔴 Overdue", "amber": "🟠 Due soon", "green": "🟢 On time"}

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def plain(text: str) -> str:
    """Text that Streamlit's markdown elements (st.error, st.info…) show exactly as typed."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


__all__ = ["RAG_SYMBOLS", "plain", "format_date", "format_datetime", "format_duration", "format_time"]
