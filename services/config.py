"""Configuration from the environment. Nothing here reads Streamlit."""

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///data/ldhub.db"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Config:
    database_url: str
    demo: bool
    demo_password: str | None


def load_config() -> Config:
    return Config(
        database_url=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        # Off unless asked for: a production start must never create known accounts.
        demo=_flag("DEMO", default=False),
        demo_password=os.environ.get("DEMO_PASSWORD") or None,
    )
