"""A statement's PDF: the same HTML printed by headless Chromium (Playwright's page.pdf()),
so the PDF a client gets and the page an account manager checked are one document.

Chromium is the system's (Debian's ``chromium``, or CREDITRECON_CHROMIUM): nothing is
downloaded. The page is printed with every network request refused; a statement needs none.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "install it (Debian/Ubuntu: `apt-get install chromium`; macOS: `brew install --cask "
    "chromium`) or set CREDITRECON_CHROMIUM to a Chromium or Chrome binary"
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class ChromiumMissing(Exception):
    """No headless browser to print with; the message says how to get one."""


def chromium() -> str:
    """The Chromium binary to print with, or ChromiumMissing saying how to install one."""
    named = os.environ.get("CREDITRECON_CHROMIUM")
    found = named or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).is_file():
        raise ChromiumMissing(f"PDF statements need Chromium, which was not found: {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise ChromiumMissing(
            "PDF statements need the playwright package: pip install playwright "
            "(it drives the installed Chromium; no browser is downloaded)"
        ) from None
    return found


def _refuse_network(route: Any) -> None:
    if route.request.url.startswith(("data:", "about:")):
        route.continue_()
    else:
        route.abort()


def pdf_bytes(htmls: list[str]) -> list[bytes]:
    """Each HTML document printed to PDF (A4, as its print CSS lays it out), in one browser."""
    if not htmls:
        return []
    binary = chromium()
    from playwright.sync_api import Error, sync_playwright

    out = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=binary, args=ARGS)
            try:
                for html in htmls:
                    page = browser.new_page()
                    page.route("**/*", _refuse_network)
                    page.set_content(html, wait_until="load")
                    page.emulate_media(media="print")
                    out.append(page.pdf(prefer_css_page_size=True, print_background=True))
                    page.close()
            finally:
                browser.close()
    except Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ChromiumMissing(
            f"Chromium ({binary}) could not print the statements: {first}"
        ) from None
    return out


def write_pdfs(pages: list[tuple[str, Path]]) -> None:
    """(html, pdf path) each: written next to each other, each PDF whole or not at all."""
    for (_, path), data in zip(pages, pdf_bytes([h for h, _ in pages]), strict=True):
        part = path.with_name(path.name + ".part")
        part.write_bytes(data)
        os.replace(part, path)
