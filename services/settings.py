"""Settings an administrator may change, with their defaults and sane ranges."""

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, select

from models import Setting
from models.codes import Urgency
from services import db


@dataclass(frozen=True)
class SettingDefinition:
    key: str
    label: str
    default: int
    minimum: int
    maximum: int
    unit: str
    why: str = ""  # shown beside the setting: why its range is what it is


MINUTES_IN_A_YEAR = 365 * 24 * 60

DEFINITIONS: dict[str, SettingDefinition] = {
    definition.key: definition
    for definition in (
        SettingDefinition(
            "target_minutes.emergency", "Response target: emergency", 60, 1, MINUTES_IN_A_YEAR, "minutes"
        ),
        SettingDefinition(
            "target_minutes.urgent", "Response target: urgent", 4 * 60, 1, MINUTES_IN_A_YEAR, "minutes"
        ),
        SettingDefinition(
            "target_minutes.routine", "Response target: routine", 3 * 24 * 60, 1, MINUTES_IN_A_YEAR, "minutes"
        ),
        SettingDefinition("amber_percent", "Amber when this share of the target is used", 75, 1, 99, "%"),
        SettingDefinition(
            "idle_timeout_minutes", "Sign out after idle", 30, 5, 60, "minutes",
            "At most 60 minutes: on a shared custody-suite or court PC the screen clears itself when this "
            "passes, so the next person never sees the last one's records.",
        ),
        SettingDefinition(
            "session_lifetime_hours", "Sign in again after", 12, 1, 24, "hours",
            "A sign-in ends after this long however active it is (about one shift), so a session "
            "taken over on a shared PC cannot last for days.",
        ),
        SettingDefinition(
            "screening_target_minutes", "Target: request to first screening", 4 * 60, 1, MINUTES_IN_A_YEAR, "minutes"
        ),
        SettingDefinition(
            "retention_adult_years", "Mental health records: keep after the last contact", 20, 1, 100, "years",
            "NHS Records Management Code of Practice 2021, Appendix II, mental health records: 20 years after "
            "the last contact (10 after death). An L&D team's records are mental health records; this applies "
            "to children too, and a child's record is kept for the longer of this and the children's rule.",
        ),
        SettingDefinition(
            "retention_child_until_age", "Children's records: keep until this birthday", 25, 18, 100, "years",
            "NHS Records Management Code of Practice 2021, Appendix II, children's records: until the 25th "
            "birthday, or the 26th if the young person was 17 when care ended (one more than this setting).",
        ),
    )
}


def _stored(session: Session, key: str) -> str | None:
    """The stored text of a setting; a reading session reads them all in one query, once."""
    every = db.read_once(session, "settings", lambda: dict(session.exec(select(Setting.key, Setting.value)).all()))
    return every.get(key)


def get_int(session: Session, key: str) -> int:
    """The setting's value, within its range whatever is stored (a value saved under an older,
    wider range — an idle time-out of a day — counts as its new maximum)."""
    definition = DEFINITIONS[key]
    stored = _stored(session, key)
    if stored is None:
        return definition.default
    try:
        return min(max(int(stored), definition.minimum), definition.maximum)
    except ValueError:
        return definition.default


def response_target(session: Session, urgency: str) -> timedelta:
    return timedelta(minutes=get_int(session, f"target_minutes.{Urgency(urgency).value}"))


def response_targets(session: Session) -> dict[str, timedelta]:
    return {urgency.value: response_target(session, urgency) for urgency in Urgency}
