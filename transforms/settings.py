"""Optional per-agency settings: <data>/config/settings.toml (all keys optional).

reporting_timezone = "America/New_York"   # default UTC
reexport_window_months = 12               # default 12

[agency]                                  # shown at the top of every client statement
name = "Example Agency"
contact = "accounts@example.test, +1 555 0100"
logo = "config/logo.png"                  # a PNG, JPEG, GIF, WebP or SVG inside the data folder
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

KEYS = ("reporting_timezone", "reexport_window_months", "agency")
AGENCY_KEYS = ("name", "contact", "logo")
# A logo is embedded in every statement (a data: URI): kept small, and only image types a
# browser shows in an <img> without running anything.
LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
LOGO_MAX_BYTES = 512 * 1024


class SettingsError(ValueError):
    """settings.toml cannot be used; the message names the file and the setting."""


@dataclass(frozen=True)
class Agency:
    """Who the statements are from: shown at the top of each one."""

    name: str = ""
    contact: str = ""
    logo: Path | None = None  # a file inside the data folder


@dataclass(frozen=True)
class Settings:
    reporting_timezone: str = "UTC"
    reexport_window_months: int = 12
    agency: Agency = Agency()

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
    return Settings(zone, window, _agency(path, data, raw.get("agency", {})))


def _agency(path: Path, data: Path, raw: object) -> Agency:
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: agency must be a table ([agency] with name, contact, logo)")
    unknown = sorted(set(raw) - set(AGENCY_KEYS))
    if unknown:
        raise SettingsError(
            f"{path}: unknown settings {['agency.' + k for k in unknown]}; "
            f"known under [agency]: {', '.join(AGENCY_KEYS)}"
        )
    for key in ("name", "contact"):
        value = raw.get(key, "")
        if not isinstance(value, str) or len(value) > 200 or "\n" in value:
            raise SettingsError(f"{path}: agency.{key} = {value!r} must be one line of text")
    logo = raw.get("logo")
    return Agency(raw.get("name", ""), raw.get("contact", ""), _logo(path, data, logo))


def _logo(path: Path, data: Path, logo: object) -> Path | None:
    """The logo file, refused unless it is an image file inside the data folder: a
    statement is sent to a client, and must never carry another file's bytes."""
    if logo is None:
        return None
    if not isinstance(logo, str) or not logo:
        raise SettingsError(
            f"{path}: agency.logo = {logo!r} must be a file name in the data folder"
        )
    root = data.resolve()
    file = root / logo
    if not file.resolve().is_relative_to(root) or ".." in Path(logo).parts:
        raise SettingsError(
            f"{path}: agency.logo = {logo!r} is outside the data folder {root}; "
            "put the logo inside it (e.g. config/logo.png)"
        )
    kind = LOGO_TYPES.get(file.suffix.lower())
    if kind is None:
        raise SettingsError(
            f"{path}: agency.logo = {logo!r} is not an image file ({', '.join(sorted(LOGO_TYPES))})"
        )
    if file.is_symlink() or not file.is_file():
        raise SettingsError(
            f"{path}: agency.logo = {logo!r} is not a regular file in the data folder"
        )
    if file.stat().st_size > LOGO_MAX_BYTES:
        raise SettingsError(
            f"{path}: agency.logo = {logo!r} is larger than {LOGO_MAX_BYTES // 1024} KB"
        )
    return file


def logo_data_uri(file: Path) -> str:
    """The logo as a data: URI, so a statement works with no network and no other file."""
    import base64

    kind = LOGO_TYPES[file.suffix.lower()]
    return f"data:{kind};base64,{base64.b64encode(file.read_bytes()).decode()}"


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
