"""Optional per-agency settings: <data>/config/settings.toml (all keys optional).

reporting_timezone = "America/New_York"   # default UTC
reexport_window_months = 12               # default 12
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Settings:
    reporting_timezone: str = "UTC"
    reexport_window_months: int = 12

    def today(self) -> dt.date:
        return dt.datetime.now(ZoneInfo(self.reporting_timezone)).date()


def load_settings(data: Path) -> Settings:
    path = data / "config" / "settings.toml"
    if not path.exists():
        return Settings()
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    unknown = set(raw) - {"reporting_timezone", "reexport_window_months"}
    if unknown:
        raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
    settings = Settings(**raw)
    ZoneInfo(settings.reporting_timezone)  # fail now on a misspelt zone
    if settings.reexport_window_months < 1:
        raise ValueError(f"{path}: reexport_window_months must be at least 1")
    return settings
