"""Optional per-agency settings: <data>/config/settings.toml (all keys optional).

reporting_timezone = "America/New_York"   # default UTC
reexport_window_months = 12               # default 12

[agency]                                  # shown at the top of every client statement
name = "Example Agency"
contact = "accounts@example.test, +1 555 0100"
logo = "config/logo.png"                  # a PNG, JPEG, GIF, WebP or SVG inside the data folder

[alerts]                                  # raised by every nightly run (transforms/alerts.py)
use_percent = [50, 80, 100]               # a client's use reaching these parts of its credits
projected_forfeit_credits = 0             # the pace leaves more than this to forfeit
projected_overage_credits = 0             # the pace runs more than this past the client's credits
lot_expiry_days = [30, 7, 1]              # days before a purchased or earned lot expires
webhook_url = "https://hooks.example.test/T0/B0/x"  # Slack-compatible JSON {"text": ...}, or
prefect_block = "slack-webhook/agency-alerts"       # a Prefect notification block (not both)
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

KEYS = ("reporting_timezone", "reexport_window_months", "agency", "alerts")
AGENCY_KEYS = ("name", "contact", "logo")
ALERT_KEYS = (
    "use_percent",
    "projected_forfeit_credits",
    "projected_overage_credits",
    "lot_expiry_days",
    "webhook_url",
    "prefect_block",
)
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
class AlertRules:
    """When an alert is raised (the build evaluates them: models/alerts/alerts.sql)."""

    use_percent: tuple[int, ...] = (50, 80, 100)
    projected_forfeit_credits: int = 0
    projected_overage_credits: int = 0
    lot_expiry_days: tuple[int, ...] = (30, 7, 1)


@dataclass(frozen=True)
class AlertDelivery:
    """Where raised alerts are sent: a webhook or a Prefect notification block, or nowhere."""

    webhook_url: str = ""
    prefect_block: str = ""

    @property
    def target(self) -> str:
        """Where alerts go, in words (a webhook's address is not shown: it is a secret)."""
        if self.webhook_url:
            return "webhook " + self.webhook_url.split("/")[2]
        if self.prefect_block:
            return f"Prefect block {self.prefect_block}"
        return ""


@dataclass(frozen=True)
class Settings:
    reporting_timezone: str = "UTC"
    reexport_window_months: int = 12
    agency: Agency = Agency()
    alert_rules: AlertRules = AlertRules()
    alert_delivery: AlertDelivery = AlertDelivery()

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
    rules, delivery = _alerts(path, raw.get("alerts", {}))
    return Settings(zone, window, _agency(path, data, raw.get("agency", {})), rules, delivery)


def _whole(value: object) -> bool:
    # bool is an int in Python, and 12.5 must not quietly become 12.
    return isinstance(value, int) and not isinstance(value, bool)


def _alerts(path: Path, raw: object) -> tuple[AlertRules, AlertDelivery]:
    if not isinstance(raw, dict):
        raise SettingsError(
            f"{path}: alerts must be a table ([alerts] with {', '.join(ALERT_KEYS)})"
        )
    unknown = sorted(set(raw) - set(ALERT_KEYS))
    if unknown:
        raise SettingsError(
            f"{path}: unknown settings {['alerts.' + k for k in unknown]}; "
            f"known under [alerts]: {', '.join(ALERT_KEYS)}"
        )
    default = AlertRules()
    levels: dict[str, tuple[int, ...]] = {}
    for key, low, high, unit in (
        ("use_percent", 1, 1000, "percents of the month's credits"),
        ("lot_expiry_days", 1, 366, "days"),
    ):
        value = raw.get(key, getattr(default, key))
        if not isinstance(value, list | tuple) or not all(
            _whole(v) and low <= v <= high for v in value
        ):
            raise SettingsError(
                f"{path}: alerts.{key} = {value!r} must be a list of whole numbers of {unit} "
                f"from {low} to {high}, such as {list(getattr(default, key))}"
            )
        levels[key] = tuple(sorted(set(value)))
    sizes: dict[str, int] = {}
    for key in ("projected_forfeit_credits", "projected_overage_credits"):
        value = raw.get(key, 0)
        if not _whole(value) or value < 0:
            raise SettingsError(
                f"{path}: alerts.{key} = {value!r} must be a whole number of credits, 0 or more"
            )
        sizes[key] = value
    url = raw.get("webhook_url", "")
    if not isinstance(url, str) or (url and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url)):
        raise SettingsError(
            f"{path}: alerts.webhook_url = {url!r} must be an http:// or https:// address"
        )
    block = raw.get("prefect_block", "")
    if not isinstance(block, str) or (block and not re.fullmatch(r"[a-z0-9-]+/[\w.-]+", block)):
        raise SettingsError(
            f"{path}: alerts.prefect_block = {block!r} must name a Prefect notification block "
            "as <block type>/<block name>, such as slack-webhook/agency-alerts"
        )
    if url and block:
        raise SettingsError(
            f"{path}: alerts.webhook_url and alerts.prefect_block are both set; keep one"
        )
    rules = AlertRules(
        levels["use_percent"],
        sizes["projected_forfeit_credits"],
        sizes["projected_overage_credits"],
        levels["lot_expiry_days"],
    )
    return rules, AlertDelivery(url, block)


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
