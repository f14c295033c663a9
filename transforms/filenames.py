"""File names made from ids (a client, a vendor): whatever the id, the file stays in the
folder it is written to, and two ids never share a file.

An id is configuration someone typed (``../../x``, ``/etc/x``, ``javascript:alert(1)``, a
NUL): it is never a path. A plain id (letters, digits, ``_``, ``-``, ``.`` inside) is its own
name; any other gets its readable part, ``~`` (which no plain id has) and a hash of the
whole id, so it stays unique.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
# Names the statements folder uses for itself, or that a file system treats specially.
RESERVED = {"index", "con", "prn", "aux", "nul"}


def _hashed(ident: str, digits: int = 10) -> str:
    readable = _UNSAFE.sub("_", ident).strip("_")[:40]
    digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:digits]
    return f"{readable}~{digest}"


def file_stem(ident: str) -> str:
    """A file name stem for ``ident``: the id itself when plain, else readable part + hash."""
    plain = _PLAIN.fullmatch(ident) and not ident.endswith(".")
    if plain and ident.lower() not in RESERVED and ".." not in ident:
        return ident
    return _hashed(ident)


def file_stems(idents: Iterable[str]) -> dict[str, str]:
    """``file_stem`` of each id, unique even where a case-insensitive file system would fold
    two plain ids (``Acme`` and ``acme``) into one file: those get the hashed form."""
    idents = sorted(set(idents))
    stems = {i: file_stem(i) for i in idents}
    folded: dict[str, list[str]] = {}
    for i, s in stems.items():
        folded.setdefault(s.lower(), []).append(i)
    for same in folded.values():
        if len(same) > 1:
            for i in same:
                stems[i] = _hashed(i)
    if len({s.lower() for s in stems.values()}) < len(stems):  # 40 bits of hash collided
        stems = {i: s if "~" not in s else _hashed(i, 64) for i, s in stems.items()}
    return stems
