"""Time: stored in UTC, shown and entered in UK local time (Europe/London)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
DATE_FORMAT = "%d/%m/%Y"
TIME_FORMAT = "%H:%M"


def now() -> datetime:
    return datetime.now(UTC)


def to_london(moment: datetime) -> datetime:
    return moment.astimezone(LONDON)


def from_london(day: date, clock_time: time) -> datetime:
    """A date and time as read on a London clock, as a UTC instant.

    In the autumn hour that happens twice, the first (summer time) reading is taken.
    """
    return datetime.combine(day, clock_time, tzinfo=LONDON).astimezone(UTC)


def today_in_london() -> date:
    return to_london(now()).date()


def format_date(day: date | datetime | None) -> str:
    if day is None:
        return ""
    if isinstance(day, datetime):
        day = to_london(day).date()
    return day.strftime(DATE_FORMAT)


def format_datetime(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return to_london(moment).strftime(f"{DATE_FORMAT} {TIME_FORMAT}")


def format_time(moment: datetime | None) -> str:
    return "" if moment is None else to_london(moment).strftime(TIME_FORMAT)


def format_duration(span: timedelta) -> str:
    """'2 h 05 min', '3 d 4 h', '-0 h 20 min' for overdue."""
    sign = "-" if span < timedelta(0) else ""
    minutes = int(abs(span).total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{sign}{days} d {hours} h"
    return f"{sign}{hours} h {minutes:02d} min"
