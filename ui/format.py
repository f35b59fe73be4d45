"""Formatting for the screen: dates dd/mm/yyyy, 24-hour London time, red/amber/green."""

from services.clock import format_date, format_datetime, format_duration, format_time

RAG_SYMBOLS = {"red": "🔴 Overdue", "amber": "🟠 Due soon", "green": "🟢 On time"}

__all__ = ["RAG_SYMBOLS", "format_date", "format_datetime", "format_duration", "format_time"]
