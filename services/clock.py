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
    """A date and time as read on a London clock, as a UTC instant, for boundaries the app sets itself
    (London midnights, which exist once on every day of the year).

    A time a person typed goes through `typed_in_london`, which refuses the hour skipped in spring
    and asks which of the autumn hour's two readings was meant.
    """
    return datetime.combine(day, clock_time, tzinfo=LONDON).astimezone(UTC)


class NotALondonTime(ValueError):
    """A typed London date and time that did not happen, or happened twice and was not told which."""

    def __init__(self, message: str, *, twice: bool):
        super().__init__(message)
        self.twice = twice  # True: the autumn hour; answer with fold 0 (BST, the first) or 1 (GMT, the second)


def happens_twice(day: date, clock_time: time) -> bool:
    """Whether this London reading happened twice (the hour before the clocks go back in October)."""
    first, second = (datetime.combine(day, clock_time, tzinfo=LONDON).replace(fold=fold) for fold in (0, 1))
    return first.utcoffset() != second.utcoffset()


def typed_in_london(day: date, clock_time: time, fold: int | None = None) -> datetime:
    """A date and time a person typed on a London clock, as a UTC instant; never moved silently.

    The spring hour that never happened (01:00–01:59 on the last Sunday of March) is refused; the
    autumn hour that happened twice (01:00–01:59 on the last Sunday of October) needs `fold`:
    0 for the first reading (BST, UTC+1) and 1 for the second (GMT).
    """
    clock_time = clock_time.replace(tzinfo=None, fold=0)
    reading = datetime.combine(day, clock_time, tzinfo=LONDON)
    instant = reading.astimezone(UTC)
    if instant.astimezone(LONDON).replace(tzinfo=None) != reading.replace(tzinfo=None):
        gap_start = clock_time.replace(minute=0)
        raise NotALondonTime(
            f"{clock_time:%H:%M} on {format_date(day)} did not happen in the UK: clocks went forward at "
            f"{gap_start:%H:%M}, straight to {(datetime.combine(day, gap_start) + timedelta(hours=1)):%H:%M}. "
            "Check the time (it was probably an hour later).", twice=False)
    if happens_twice(day, clock_time):
        if fold not in (0, 1):
            raise NotALondonTime(
                f"{clock_time:%H:%M} on {format_date(day)} happened twice in the UK (clocks went back at 02:00): "
                "say which one, the first (BST) or the second (GMT).", twice=True)
        instant = reading.replace(fold=fold).astimezone(UTC)
    return instant


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
