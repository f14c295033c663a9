"""The text and page count of a PDF printed by Chromium, read from its bytes (no PDF library
is a dependency): each font's ToUnicode map decodes the glyph codes its text shows.

Enough for Chromium's (Skia's) PDFs, which show text as hex strings of 2-byte glyph codes
(``<0044> Tj`` and ``[<00440045> 12 <0046>] TJ``) in Flate-compressed content streams."""

from __future__ import annotations

import re
import unicodedata
import zlib

OBJECT = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)


def _objects(pdf: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """{object number: (its dictionary text, its stream inflated, if any)}. A stream is cut
    by its /Length (its bytes may end in a line break of their own)."""
    out: dict[int, tuple[bytes, bytes | None]] = {}
    for number, body in OBJECT.findall(pdf):
        start = re.search(rb"stream\r?\n", body)
        length = re.search(rb"/Length (\d+)", body[: start.start()]) if start else None
        data = None
        if start and length:
            raw = body[start.end() : start.end() + int(length.group(1))]
            try:
                data = zlib.decompress(raw) if b"FlateDecode" in body[: start.start()] else raw
            except zlib.error:
                data = raw
        out[int(number)] = (body[: start.start()] if start else body, data)
    return out


def _cmap(text: bytes) -> dict[int, str]:
    codes: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", text, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            codes[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", text, re.S):
        for lo, hi, dst in re.findall(
            rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block
        ):
            start = int(dst, 16)
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                codes[code] = chr(start + i)
    return codes


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))


def pdf_text(pdf: bytes) -> str:
    """The text the PDF shows, in drawing order (runs joined by spaces)."""
    objects = _objects(pdf)
    fonts: dict[int, dict[int, str]] = {}
    for number, (head, _) in objects.items():
        ref = re.search(rb"/ToUnicode\s+(\d+)\s+0\s+R", head)
        if ref and int(ref.group(1)) in objects:
            fonts[number] = _cmap(objects[int(ref.group(1))][1] or b"")
    names: dict[bytes, int] = {}  # /F4 -> font object, from every resource dictionary
    for head, _ in objects.values():
        for block in re.findall(rb"/Font\s*<<(.*?)>>", head, re.S):
            for name, ref in re.findall(rb"/([A-Za-z0-9_.+-]+)\s+(\d+)\s+0\s+R", block):
                names[name] = int(ref)
    runs: list[str] = []
    for _, data in objects.values():
        if not data or b"Tf" not in data:
            continue
        font: dict[int, str] = {}
        for token in re.finditer(rb"/([A-Za-z0-9_.+-]+)\s+[\d.]+\s+Tf|<([0-9A-Fa-f]*)>", data):
            if token.group(1) is not None:
                font = fonts.get(names.get(token.group(1), -1), {})
                runs.append(" ")
            else:
                hexa = token.group(2).decode()
                runs.append(
                    "".join(font.get(int(hexa[i : i + 4], 16), "") for i in range(0, len(hexa), 4))
                )
    return "".join(runs)


def words(pdf: bytes) -> str:
    """The PDF's text with all white space removed (Chromium places words apart) and
    ligatures taken apart (its "fi" is one glyph)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", pdf_text(pdf)))
