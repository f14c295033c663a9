"""Optional per-agency settings: <data>/config/settings.toml (all keys optional).

reporting_timezone = "America/New_York"   # default UTC
reexport_window_months = 12               # default 12
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

KEYS = ("reporting_timezone", "reexport_window_months")


class SettingsError(ValueError):
    """settings.toml cannot be used; the message names the file and the setting."""


@dataclass(frozen=True)
class Settings:
    reporting_timezone: str = "UTC"
    reexport_window_months: int = 12

    def today(self) -> dt.date:
        return dt.datetime.now(ZoneInfo(self.reporting_timezone)).date()


def settings_path(data: Path) -> Path:
    return data / "config" / "settings.toml"


def load_settings(data: Path) -> Settings:
    path = settings_path(data)
    if not path.exists():
        return Settings()
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path} cannot be read ({exc})") from None
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise SettingsError(f"{path}: unknown settings {unknown}; known: {', '.join(KEYS)}")
    zone = raw.get("reporting_timezone", Settings.reporting_timezone)
    if not isinstance(zone, str) or not _is_zone(zone):
        raise SettingsError(
            f"{path}: reporting_timezone = {zone!r} is not a time zone "
            '(an IANA name such as "UTC" or "America/New_York")'
        )
    window = raw.get("reexport_window_months", Settings.reexport_window_months)
    # bool is an int in Python, and 12.5 must not quietly become 12.
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 120:
        raise SettingsError(
            f"{path}: reexport_window_months = {window!r} must be a whole number of months "
            "from 1 to 120"
        )
    return Settings(zone, window)


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
