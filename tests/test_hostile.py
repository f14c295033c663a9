"""Hostile input: an inbox filled by people and vendor UIs, a config folder edited in
spreadsheets, ids typed by anyone. Each case states the exact outcome it must give; none
may reach outside the data and warehouse folders, be read through a link, or be counted
without a word. Input rows = loaded + quarantined for every file.

The inbox cases run as one night (links, pipes, devices, sockets, binary files, UTF-16,
control characters, near-miss File Names, re-delivered listings, SQL-looking ids); the
config cases each run alone (a bad config file stops the run, or quarantines its row).
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import rows, run_pipeline, write_folder
from tests.test_statements import CHROMIUM, browser  # noqa: F401  (a fixture)
from transforms.build import RunParams, build
from transforms.config_errors import ConfigError
from transforms.filenames import file_stems
from transforms.ingest import ingest, ingest_store_path
from transforms.sqltext import sql_string
from transforms.statements import write_statements

D = "inbox/zoominfo/downloads/"
X = "inbox/zoominfo/exports/"
U = "inbox/zoominfo/usage/"
P = "inbox/6sense/purchases/"
LISTING = (
    "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
)
SECRET = "SECRET-MARKER-4242"
AS_OF = dt.date(2025, 10, 31)

CONFIG = {
    "config/clients.csv": "client_id,client_name\nacme,Acme\nbeta,Beta\n",
    "config/users.csv": "vendor,user,client_id,valid_from,valid_to\n"
    "zoominfo,ann@agency.test,acme,2025-01-01,\n"
    "zoominfo,bo@agency.test,beta,2025-01-01,\n",
    "config/contracts.csv": "vendor,contract_id,starts_on,ends_on,pool_credits,reset,"
    "overage_allowed,cap_credits,price_per_credit\n"
    "zoominfo,ZI,2025-01-01,2026-01-01,500,monthly,true,600,0.40\n",
    "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
    "zoominfo,acme,2025-10,100\nzoominfo,beta,2025-10,50\n",
    "config/grants.csv": "vendor,client_id,grant_id,kind,credits,effective_on,expires_on,note\n",
    "config/reversals.csv": "vendor,ticket,reference,credits,reversed_on\n",
}


def listing(*rows_: str) -> str:
    return LISTING + "".join(r + "\n" for r in rows_)


def export(*ids: str) -> str:
    return "ZoomInfo Contact ID,Email Address\n" + "".join(f"{i},x@x.test\n" for i in ids)


@dataclass
class Case:
    """One hostile input and what it must give: the manifest status of its file, rows read,
    loaded, quarantined, words the file's error must contain, and for some rows the words
    their quarantine reason must contain."""

    what: str
    path: str
    status: str
    counts: tuple[int, int, int] = (0, 0, 0)
    error: str | None = None
    reasons: dict[int, str] = field(default_factory=dict)


REFUSED = "only regular files inside the data folder are read"

# --- the night of hostile inbox files -------------------------------------------------------

INBOX_CASES = [
    # links and special files: recorded, never opened
    Case("link to a system file", X + "passwd.csv", "rejected", error="a symbolic link"),
    Case("link to an export outside", X + "outside_export.csv", "rejected", error=REFUSED),
    Case("link to a file inside the folder", X + "inside_link.csv", "rejected", error="link"),
    Case("dangling link", X + "dangling.csv", "rejected", error="a symbolic link"),
    Case("link to a pipe outside", X + "to_fifo.csv", "rejected", error="a symbolic link"),
    Case("named pipe", X + "fifo.csv", "rejected", error="a named pipe (FIFO)"),
    Case("folder named .csv", X + "folder.csv", "rejected", error="a directory"),
    Case("link to a folder outside", X + "link_dir.csv", "rejected", error="a symbolic link"),
    Case("socket", X + "socket.csv", "rejected", error="a socket"),
    Case("device", X + "device.csv", "rejected", error="a device"),
    Case("linked listing", D + "linked_listing.csv", "rejected", error="a symbolic link"),
    Case("linked 6sense log", P + "linked.csv", "rejected", error="a symbolic link"),
    Case("usage folder is a link", U.rstrip("/"), "rejected", error="folder is a symbolic link"),
    # bytes that are not CSV text
    Case("xlsx saved as csv", X + "workbook.csv", "rejected", error="an Excel workbook (.xlsx)"),
    Case("zip saved as csv", X + "archive.csv", "rejected", error="a zip archive"),
    Case("xls saved as csv", D + "old_excel.csv", "rejected", error="Excel 97-2003 workbook"),
    Case("pdf saved as csv", X + "document.csv", "rejected", error="a PDF document"),
    Case("gzip saved as csv", X + "compressed.csv", "rejected", error="a gzip archive"),
    Case("png saved as csv", X + "image.csv", "rejected", error="a PNG image"),
    Case("jpeg saved as csv", X + "photo.csv", "rejected", error="a JPEG image"),
    Case("random bytes", X + "random.csv", "rejected", error="file is binary, not CSV text"),
    Case("only NUL bytes", X + "nuls.csv", "rejected", error="file is binary"),
    Case("UTF-16 without BOM", X + "u16_nobom.csv", "rejected", error="UTF-16 text without a"),
    Case("only a BOM", X + "bom_only.csv", "rejected", error="file is empty"),
    Case("only a UTF-16 BOM", D + "u16_bom_only.csv", "rejected", error="file is empty"),
    Case("only blank lines", X + "blank.csv", "rejected", error="file is empty"),
    # UTF-16 with a BOM is read
    Case("UTF-16 LE listing", D + "u16le_listing.csv", "loaded", (1, 1, 0)),
    Case("UTF-16 BE export", X + "u16be.csv", "loaded", (2, 2, 0)),
    Case("UTF-16 LE export", X + "u16le.csv", "loaded", (1, 1, 0)),
    # control characters in ids
    Case(
        "control characters in Contact IDs",
        X + "ctrl.csv",
        "loaded",
        (7, 1, 6),
        reasons={
            2: '"13\ufffd45" contains a control character',
            3: '"\ufffd[31m1300000100" contains a control character',
            4: '"1300000101\ufffd" contains a control character',
            5: '"1300000102\ufffd" contains a control character',
            6: '"13\ufffd00103" contains a control character',
            8: '"13\ufffd00105" contains a control character',
        },
    ),
    Case(
        "control characters in listing ids",
        D + "ctrl_listing.csv",
        "loaded",
        (3, 0, 3),
        reasons={
            2: 'Export ID: "L\ufffdX" contains a control character',
            3: 'Exported By: "ann@agency.test\ufffd" contains a control character',
            4: 'File Name: "c\ufffd.csv" contains a control character',
        },
    ),
    # File Names matched exactly
    Case("exact File Name", X + "Acme.csv", "loaded", (1, 1, 0)),
    Case(
        "File Name differing in case",
        X + "ACME.csv",
        "loaded",
        (1, 0, 1),
        reasons={2: "export L20 names Acme.csv, which differs only in case or spaces"},
    ),
    Case(
        "File Name differing in spaces",
        X + "report .csv",
        "loaded",
        (1, 0, 1),
        reasons={2: "export L21 names report.csv, which differs only in case or spaces"},
    ),
    Case("listings naming near matches", D + "names.csv", "loaded", (2, 2, 0)),
    # a listing re-delivered: the copy delivered later is kept, whatever the names
    Case("re-delivered listing, kept", D + "relist_a.csv", "loaded", (2, 2, 0)),
    Case(
        "re-delivered listing, superseded",
        D + "relist_b.csv",
        "loaded",
        (2, 0, 2),
        reasons={
            2: "Export ID L30 is listed again in inbox/zoominfo/downloads/relist_a.csv row 2, "
            "delivered later (file modified 2025-10-30 12:00:00 UTC); that later copy is used; "
            "numbers differ: Records 2 there, 3 here; Credits Used 2 there, 3 here",
            3: "Export ID L31 is listed again in inbox/zoominfo/downloads/relist_a.csv row 3, "
            "delivered later (file modified 2025-10-30 12:00:00 UTC); that later copy is used "
            "(same numbers)",
        },
    ),
    Case("export of the re-delivered listing", X + "relist.csv", "loaded", (2, 2, 0)),
    # ids that look like SQL, paths or markup are only text
    Case("SQL-looking ids", D + "sqlish.csv", "loaded", (1, 1, 0)),
    Case("SQL-looking Contact IDs", X + "sqlish.csv", "loaded", (3, 3, 0)),
    Case("a listing naming a refused link", D + "traversal.csv", "loaded", (1, 1, 0)),
    Case("a plain export", X + "plain.csv", "loaded", (1, 1, 0)),
    Case("listing of the plain files", D + "plain.csv", "loaded", (4, 4, 0)),
]

# Charged records the night must give: (export, record) — and nothing from outside.
CHARGED = [
    ("L1", "1300000001"),
    ("L2", "1300000002"),
    ("L2", "1300000003"),
    ("L3", "1300000004"),
    ("L20", "1300000200"),
    ("L30", "1300000300"),
    ("L30", "1300000301"),
    ("L40' OR '1'='1", "1300000400"),
    ("L40' OR '1'='1", "1'); DROP TABLE ledger_entries; --"),
    ("L40' OR '1'='1", "١٣٠٠"),
    ("L5", "1300000104"),
    ("L6", "1300000500"),
]


def _xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("export.csv", export("1300000999"))
    return buf.getvalue()


def hostile_inbox(root: Path) -> tuple[Path, Path]:
    """The data folder of INBOX_CASES under root, and a folder of things outside it."""
    data = write_folder(root / "agency", CONFIG)
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"ZoomInfo Contact ID,Note\n9999999999,{SECRET}\n")
    (outside / "listing.csv").write_text(
        listing(f"L99,{SECRET},secret.csv,ann@agency.test,2025-10-05 10:00:00,Contacts,1,1")
    )
    os.mkfifo(outside / "pipe")
    (outside / "dir").mkdir()
    (outside / "dir" / "inner.csv").write_text(export("9999999998"))
    (outside / "usage").mkdir()
    (outside / "usage" / "u.csv").write_text(
        f"User,Period,Monthly Credits Used\n{SECRET},Oct 2025,3\n"
    )
    x, d = data / X, data / D
    for folder in (x, d, data / P):
        folder.mkdir(parents=True, exist_ok=True)

    files = {
        X + "plain.csv": export("1300000001"),
        X + "Acme.csv": export("1300000200"),
        X + "ACME.csv": export("1300000201"),
        X + "report .csv": export("1300000210"),
        X + "relist.csv": export("1300000300", "1300000301"),
        X + "sqlish.csv": export("1300000400", '"1\'); DROP TABLE ledger_entries; --"', "١٣٠٠"),
        X + "bom_only.csv": "\ufeff",
        X + "blank.csv": "   \n\n\t\n",
        D + "plain.csv": listing(
            "L1,plain,plain.csv,ann@agency.test,2025-10-02 10:00:00,Contacts,1,1",
            "L2,u16be,u16be.csv,bo@agency.test,2025-10-03 10:00:00,Contacts,2,2",
            "L5,ctrl,ctrl.csv,ann@agency.test,2025-10-04 10:00:00,Contacts,7,1",
            "L6,u16le,u16le.csv,bo@agency.test,2025-10-04 11:00:00,Contacts,1,1",
        ),
        D + "names.csv": listing(
            "L20,exact,Acme.csv,ann@agency.test,2025-10-06 10:00:00,Contacts,1,1",
            "L21,spaced,report.csv,ann@agency.test,2025-10-06 11:00:00,Contacts,1,1",
        ),
        D + "relist_a.csv": listing(
            "L30,first,relist.csv,ann@agency.test,2025-10-07 10:00:00,Contacts,2,2",
            "L31,same,none31.csv,ann@agency.test,2025-10-07 11:00:00,Contacts,0,0",
        ),
        D + "relist_b.csv": listing(
            "L30,first,relist.csv,ann@agency.test,2025-10-07 10:00:00,Contacts,3,3",
            "L31,same,none31.csv,ann@agency.test,2025-10-07 11:00:00,Contacts,0,0",
        ),
        D + "sqlish.csv": listing(
            "\"L40' OR '1'='1\",\"x'); DROP TABLE clients; --\",sqlish.csv,bo@agency.test,"
            "2025-10-08 10:00:00,Contacts,3,3"
        ),
        D + "traversal.csv": listing(
            "L41,t,../../../../etc/passwd.csv,ann@agency.test,2025-10-08 11:00:00,Contacts,1,1"
        ),
    }
    write_folder(data, files)
    (x / "ctrl.csv").write_bytes(
        b"ZoomInfo Contact ID,Email Address\n"
        b"13\x0045,a@x.test\n"
        b"\x1b[31m1300000100,b@x.test\n"
        b"1300000101\x7f,c@x.test\n"
        b"1300000102\x01,d@x.test\n"
        b"13\x0800103,e@x.test\n"
        b"1300000104,f@x.test\n"
        b"13\x0b00105,g@x.test\n"
    )
    (d / "ctrl_listing.csv").write_bytes(
        LISTING.encode()
        + b"L\x00X,a,x.csv,ann@agency.test,2025-10-09 10:00:00,Contacts,1,1\n"
        + b"L50,b,y.csv,ann@agency.test\x1b,2025-10-09 10:00:00,Contacts,1,1\n"
        + b"L51,c,c\x07.csv,ann@agency.test,2025-10-09 10:00:00,Contacts,1,1\n"
    )
    (d / "u16le_listing.csv").write_bytes(
        listing("L3,u16,u16le_target.csv,ann@agency.test,2025-10-05 09:00:00,Contacts,1,1").encode(
            "utf-16"
        )
    )
    (x / "u16le_target.csv").write_text(export("1300000004"))
    (x / "u16be.csv").write_bytes(
        codecs.BOM_UTF16_BE + export("1300000002", "1300000003").encode("utf-16-be")
    )
    (x / "u16le.csv").write_bytes(codecs.BOM_UTF16_LE + export("1300000500").encode("utf-16-le"))
    (x / "u16_nobom.csv").write_bytes(export("1300000600").encode("utf-16-le"))
    (x / "workbook.csv").write_bytes(_xlsx())
    (x / "archive.csv").write_bytes(_zip())
    (d / "old_excel.csv").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512))
    (x / "document.csv").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    (x / "compressed.csv").write_bytes(b"\x1f\x8b\x08\x00" + bytes(64))
    (x / "image.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (x / "photo.csv").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    (x / "random.csv").write_bytes(bytes(range(256)) * 4)
    (x / "nuls.csv").write_bytes(bytes(4096))
    (d / "u16_bom_only.csv").write_bytes(codecs.BOM_UTF16_LE)
    # links, pipes, sockets, devices
    (x / "passwd.csv").symlink_to("/etc/passwd")
    (x / "outside_export.csv").symlink_to(outside / "secret.csv")
    (x / "inside_link.csv").symlink_to(x / "plain.csv")
    (x / "dangling.csv").symlink_to(outside / "nothing.csv")
    (x / "to_fifo.csv").symlink_to(outside / "pipe")
    os.mkfifo(x / "fifo.csv")
    (x / "folder.csv").mkdir()
    (x / "folder.csv" / "inner.csv").write_text(export("9999999997"))
    (x / "link_dir.csv").symlink_to(outside / "dir")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(x / "socket.csv"))
    sock.close()
    os.mknod(x / "device.csv", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null's
    (d / "linked_listing.csv").symlink_to(outside / "listing.csv")
    (data / P / "linked.csv").symlink_to(outside / "secret.csv")
    (data / U.rstrip("/")).symlink_to(outside / "usage")
    # delivery order: relist_a (earlier by name) was delivered after relist_b
    later = int(dt.datetime(2025, 10, 30, 12, tzinfo=dt.UTC).timestamp()) * 10**9
    os.utime(d / "relist_a.csv", ns=(later, later))
    os.utime(d / "relist_b.csv", ns=(later - 86_400 * 10**9,) * 2)
    return data, outside


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under root (links not followed): kind, size, modification time."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            s = os.lstat(p)
            out[str(p.relative_to(root))] = (stat.S_IFMT(s.st_mode), s.st_size, s.st_mtime_ns)
    return out


class PipeWatch:
    """Notices a reader opening a FIFO (a writer can open it without blocking only then),
    and unblocks it with an empty write end, so a pipeline that opened it would not hang."""

    def __init__(self, pipes: list[Path]) -> None:
        self.pipes = pipes
        self.opened: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def watch(self) -> None:
        while not self.stop.is_set():
            for p in self.pipes:
                try:
                    if not stat.S_ISFIFO(os.lstat(p).st_mode):
                        continue
                    fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:  # ENXIO: nobody is reading
                    continue
                self.opened.append(str(p))
                os.close(fd)
            time.sleep(0.01)

    def __enter__(self) -> PipeWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def rows_of(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[dict[str, object]]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def text_of(con: duckdb.DuckDBPyConnection) -> str:
    """Every value of every table, as text."""
    out = []
    for (table,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall():
        for r in con.sql(f"FROM {table}").fetchall():
            out += [str(v) for v in r]
    return "\n".join(out)


@dataclass
class Night:
    con: duckdb.DuckDBPyConnection
    data: Path
    pipes_opened: list[str]
    changed: set[str]  # paths under the root (data folder's parent) that changed
    target_read: bool | None  # a link's target's access time moved (None: not measurable)
    everything: str  # every value of the warehouse and the ingest store, as text


@pytest.fixture(scope="module")
def hostile_night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    root = tmp_path_factory.mktemp("hostile")
    data, outside = hostile_inbox(root)
    secret = outside / "secret.csv"
    # Reading updates a file's access time when it is older than its modification time
    # (relatime); a probe shows whether this file system does, so the check means something.
    st_ = secret.stat()
    os.utime(secret, ns=(st_.st_mtime_ns - 10**10, st_.st_mtime_ns))
    probe = outside / "probe"
    probe.write_text("x")
    os.utime(probe, ns=(probe.stat().st_mtime_ns - 10**10, probe.stat().st_mtime_ns))
    probe_atime = probe.stat().st_atime_ns
    probe.read_text()
    atime_works = probe.stat().st_atime_ns != probe_atime
    probe.unlink()
    secret_atime = secret.stat().st_atime_ns
    before = snapshot(root)
    warehouse = data / "warehouse" / "w.duckdb"
    with PipeWatch([outside / "pipe", data / X / "fifo.csv"]) as watch:
        con = run_pipeline(data, warehouse, AS_OF)
    after = snapshot(root)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    store = duckdb.connect(str(ingest_store_path(warehouse)), read_only=True)
    everything = text_of(con) + text_of(store)
    store.close()
    target_read = secret.stat().st_atime_ns != secret_atime if atime_works else None
    yield Night(con, data, watch.opened, changed, target_read, everything)
    con.close()


def test_nothing_outside_the_data_and_warehouse_folders_is_read_or_written(
    hostile_night: Night,
) -> None:
    night = hostile_night
    assert night.pipes_opened == [], "a named pipe was opened"
    # the data folder gains its warehouse folder; nothing else changes, inside or outside
    changed = night.changed - {"agency"}
    assert changed == {k for k in changed if k.startswith("agency/warehouse")}
    assert night.target_read is not True, "a link's target was read"
    assert SECRET not in night.everything and "9999999999" not in night.everything
    assert "root:x:0:0" not in night.everything  # /etc/passwd


def test_the_hostile_corpus_has_at_least_60_cases() -> None:
    rows_as_cases = sum(max(1, len(c.reasons)) for c in INBOX_CASES)
    assert rows_as_cases + len(CONFIG_CASES) + len(HOSTILE_CLIENT_IDS) >= 60


def test_the_manifest_lists_every_hostile_path_and_only_those(hostile_night: Night) -> None:
    manifest = rows(
        hostile_night.con,
        "SELECT path, rows_read, rows_loaded, rows_quarantined FROM ingest_manifest",
    )
    paths = {m["path"] for m in manifest if not m["path"].startswith("config/")}
    assert paths == {c.path for c in INBOX_CASES} | {X + "u16le_target.csv"}
    for m in manifest:
        assert m["rows_read"] == m["rows_loaded"] + m["rows_quarantined"], m


@pytest.mark.parametrize("case", INBOX_CASES, ids=[c.what for c in INBOX_CASES])
def test_each_hostile_inbox_file_gives_its_outcome(case: Case, hostile_night: Night) -> None:
    con = hostile_night.con
    found = rows_of(con, "SELECT * FROM ingest_manifest WHERE path = ?", case.path)
    assert len(found) == 1, (case.what, found)
    m = found[0]
    got = (m["status"], (m["rows_read"], m["rows_loaded"], m["rows_quarantined"]))
    assert got == (case.status, case.counts), (case.what, m)
    assert m["rows_read"] == m["rows_loaded"] + m["rows_quarantined"]
    if case.error:
        assert case.error in (m["error"] or ""), (case.what, m["error"])
    else:
        assert m["error"] is None, (case.what, m["error"])
    mine = {
        r["row_number"]: r["reason"]
        for r in rows_of(con, "SELECT row_number, reason FROM quarantine WHERE file = ?", case.path)
    }
    assert set(mine) == set(case.reasons), (case.what, mine)
    for row, words in case.reasons.items():
        assert words in mine[row], (case.what, row, mine[row])
    if "UTF-16 " in case.what and case.status == "loaded":
        assert m["encoding"] == "utf-16"


def test_only_what_the_listings_name_exactly_is_charged(hostile_night: Night) -> None:
    con = hostile_night.con
    charged = rows(
        con,
        "SELECT export_id, record_key FROM ledger_entries "
        "WHERE entry_type IN ('consume', 'overage') ORDER BY export_id, record_key",
    )
    assert [(r["export_id"], r["record_key"]) for r in charged] == sorted(CHARGED)
    # the re-delivered listing's kept copy is the one whose numbers the reconciliation uses
    (listed,) = rows(
        con,
        "SELECT sum(reported_credits) AS reported FROM vendor_reconciliation "
        "WHERE user = 'ann@agency.test' AND month = '2025-10-01'",
    )
    # L1 1, L3 1, L5 1, L20 1, L21 1, L30 2 (the kept copy, not 3), L31 0, L41 1
    assert listed["reported"] == 8


def test_a_second_night_records_nothing_new(hostile_night: Night) -> None:
    """Refused paths are recorded once; touching the superseded listing (a newer time, the
    same bytes) does not make it the delivered-later copy: delivery is when it arrived."""
    data = hostile_night.data
    warehouse = data / "warehouse" / "w.duckdb"
    store = ingest_store_path(warehouse)
    before = duckdb.connect(str(store), read_only=True)
    n = before.sql("SELECT count(*) FROM ingest_files").fetchall()[0][0]
    before.close()
    os.utime(data / D / "relist_b.csv")  # now
    result = ingest(data, store)
    assert {f.status for f in result.files} == {"unchanged"}
    build(store, warehouse, RunParams(AS_OF), result.current_config, incremental=False)
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.sql("SELECT count(*) FROM ingest_manifest").fetchall()[0][0] == n
    reasons = rows_of(
        con, "SELECT reason FROM quarantine WHERE file = ? ORDER BY row_number", D + "relist_b.csv"
    )
    assert [r["reason"] for r in reasons] == [
        c.reasons[row] for c in INBOX_CASES if c.path == D + "relist_b.csv" for row in (2, 3)
    ]
    con.close()


# --- config cases: each alone ----------------------------------------------------------------


@dataclass
class ConfigCase:
    """A change to the clean config and what it must give: a run stopped with an error whose
    words are ``error``, or a row of ``path`` quarantined with ``reason``."""

    what: str
    files: dict[str, str | bytes | None]  # None: make it a folder
    error: str | None = None
    quarantined: tuple[str, int, str] | None = None


C = "config/"
CONTRACT_HEAD = CONFIG[C + "contracts.csv"].splitlines()[0] + "\n"
ZI = "zoominfo,ZI,2025-01-01,2026-01-01,500,monthly,true,600,0.40\n"

CONFIG_CASES = [
    ConfigCase(
        "duplicate client_id",
        {C + "clients.csv": "client_id,client_name\nacme,Acme\nbeta,Beta\nacme,Acme Again\n"},
        quarantined=(
            C + "clients.csv",
            4,
            "client_id acme is already defined by clients.csv row 2",
        ),
    ),
    ConfigCase(
        "client_id differing by case and spaces",
        {C + "clients.csv": "client_id,client_name\nacme,Acme\nbeta,Beta\n ACME ,Other\n"},
        quarantined=(
            C + "clients.csv",
            4,
            "client_id acme is already defined by clients.csv row 2",
        ),
    ),
    ConfigCase(
        "NUL in a client_id",
        {C + "clients.csv": b"client_id,client_name\nacme,Acme\nbeta,Beta\nga\x00mma,G\n"},
        quarantined=(C + "clients.csv", 4, "contains a control character"),
    ),
    ConfigCase(
        "escape in a user's client_id",
        {
            C + "users.csv": CONFIG[C + "users.csv"] + "zoominfo,cy@agency.test,acme\x1b,,\n",
        },
        quarantined=(C + "users.csv", 4, "contains a control character"),
    ),
    ConfigCase(
        "user mapped twice, differing by case",
        {C + "users.csv": CONFIG[C + "users.csv"] + "zoominfo,ANN@agency.test,beta,2025-01-01,\n"},
        quarantined=(C + "users.csv", 4, "already mapped for these dates by users.csv row 2"),
    ),
    ConfigCase(
        "allocation 12.5",
        {C + "allocations.csv": CONFIG[C + "allocations.csv"] + "zoominfo,acme,2025-11,12.5\n"},
        quarantined=(C + "allocations.csv", 4, '"12.5" is not a whole number'),
    ),
    ConfigCase(
        "allocation 'twelve'",
        {C + "allocations.csv": CONFIG[C + "allocations.csv"] + "zoominfo,acme,2025-11,twelve\n"},
        quarantined=(C + "allocations.csv", 4, '"twelve" is not a whole number'),
    ),
    ConfigCase(
        "allocation 1e3",
        {C + "allocations.csv": CONFIG[C + "allocations.csv"] + "zoominfo,acme,2025-11,1e3\n"},
        quarantined=(C + "allocations.csv", 4, '"1e3" is not a whole number'),
    ),
    ConfigCase(
        "allocation repeated for a month, differing by case",
        {C + "allocations.csv": CONFIG[C + "allocations.csv"] + "zoominfo,ACME,Oct 2025,80\n"},
        quarantined=(C + "allocations.csv", 4, "row 2 already sets zoominfo for acme from 2025-10"),
    ),
    ConfigCase(
        "grant_id repeated, differing by case",
        {
            C + "grants.csv": CONFIG[C + "grants.csv"]
            + "zoominfo,acme,G1,gift,5,2025-10-01,,\nzoominfo,beta,g1 ,gift,5,2025-10-01,,\n"
        },
        quarantined=(C + "grants.csv", 3, "grant_id g1 is already used by row 2"),
    ),
    ConfigCase(
        "grant of 5.5 credits",
        {C + "grants.csv": CONFIG[C + "grants.csv"] + "zoominfo,acme,G1,gift,5.5,2025-10-01,,\n"},
        quarantined=(C + "grants.csv", 2, '"5.5" is not a whole number'),
    ),
    ConfigCase(
        "grant with no date",
        {C + "grants.csv": CONFIG[C + "grants.csv"] + "zoominfo,acme,G1,gift,5,soon,,\n"},
        quarantined=(C + "grants.csv", 2, '"soon" is not a date'),
    ),
    ConfigCase(
        "reversal repeated",
        {
            C + "reversals.csv": CONFIG[C + "reversals.csv"]
            + "zoominfo,T1,1300000001,1,2025-10-20\nzoominfo,t1,1300000001,1,2025-10-21\n"
        },
        quarantined=(C + "reversals.csv", 3, "ticket t1 already reverses 1300000001"),
    ),
    ConfigCase(
        "reversal of 'one' credit",
        {
            C + "reversals.csv": CONFIG[C + "reversals.csv"]
            + "zoominfo,T1,1300000001,one,2025-10-20\n"
        },
        quarantined=(C + "reversals.csv", 2, '"one" is not a whole number'),
    ),
    ConfigCase(
        "UTF-16 clients file is read",
        {C + "clients.csv": CONFIG[C + "clients.csv"].encode("utf-16")},
    ),
    ConfigCase(
        "contracts.csv is a folder",
        {C + "contracts.csv": None},
        error="config/contracts.csv is a directory, not a file",
    ),
    ConfigCase(
        "grants.csv (optional) is a folder", {C + "grants.csv": None}, error="is a directory"
    ),
    ConfigCase(
        "clients.csv is a link",
        {C + "clients.csv": "link"},
        error="config/clients.csv is a symbolic link, not a file",
    ),
    ConfigCase(
        "users.csv is a named pipe", {C + "users.csv": "fifo"}, error="is a named pipe (FIFO)"
    ),
    ConfigCase(
        "config folder is a link", {"config": "link-folder"}, error="config is a symbolic link"
    ),
    ConfigCase(
        "contracts overlap",
        {
            C + "contracts.csv": CONTRACT_HEAD
            + ZI
            + "zoominfo,ZI-2,2025-06-01,2026-06-01,100,monthly,true,,\n"
        },
        error="config/contracts.csv: rows 2 and 3: zoominfo contracts overlap from 2025-06-01 "
        "to 2026-01-01 (one contract per vendor on any day); nothing was published",
    ),
    ConfigCase(
        "contract_id repeated, differing by case",
        {
            C + "contracts.csv": CONTRACT_HEAD
            + ZI
            + "zoominfo,zi,2026-01-01,2027-01-01,500,monthly,true,,\n"
        },
        error="rows 2 and 3: contract_id zi is used twice",
    ),
    ConfigCase(
        "contract pool 12.5",
        {C + "contracts.csv": CONTRACT_HEAD + ZI.replace(",500,", ",12.5,")},
        error='config/contracts.csv: row 2: pool_credits: "12.5" is not a whole number',
    ),
    ConfigCase(
        "contract date unreadable",
        {C + "contracts.csv": CONTRACT_HEAD + ZI.replace("2026-01-01", "31/12/2025")},
        error='row 2: ends_on: "31/12/2025" is not a date',
    ),
    ConfigCase(
        "contract ending before it starts",
        {C + "contracts.csv": CONTRACT_HEAD + ZI.replace("2026-01-01", "2024-01-01")},
        error="row 2: ends_on 2024-01-01 is not after starts_on 2025-01-01",
    ),
    ConfigCase(
        "contracts file missing a column",
        {C + "contracts.csv": "vendor,contract_id,starts_on\nzoominfo,ZI,2025-01-01\n"},
        error="config/contracts.csv: the file is rejected: no 'ends_on', 'reset' columns",
    ),
    ConfigCase(
        "contracts file with no rows",
        {C + "contracts.csv": CONTRACT_HEAD},
        error="no contract rows (every charge would be overage)",
    ),
    ConfigCase(
        "contracts saved as xlsx",
        {C + "contracts.csv": _xlsx()},
        error="the file is rejected: file is an Excel workbook (.xlsx)",
    ),
    ConfigCase(
        "users file of binary bytes",
        {C + "users.csv": bytes(range(256)) * 2},
        error="config/users.csv: the file is rejected: file is binary",
    ),
]


def config_folder(root: Path, case: ConfigCase) -> Path:
    data = write_folder(root / "agency", CONFIG)
    write_folder(
        data,
        {
            X + "plain.csv": export("1300000001"),
            D + "l.csv": listing(
                "L1,plain,plain.csv,ann@agency.test,2025-10-02 10:00:00,Contacts,1,1"
            ),
        },
    )
    for rel, content in case.files.items():
        path = data / rel
        if path.is_dir() and not path.is_symlink():
            for f in path.iterdir():
                f.rename(root / f.name)
            path.rmdir()
            path = data / rel
        elif path.exists():
            path.unlink()
        if content is None:
            path.mkdir()
        elif content == "link":
            (root / "elsewhere.csv").write_text(CONFIG[rel])
            path.symlink_to(root / "elsewhere.csv")
        elif content == "link-folder":
            path.symlink_to(root)
        elif content == "fifo":
            os.mkfifo(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return data


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.what for c in CONFIG_CASES])
def test_each_config_case_gives_its_outcome(case: ConfigCase, tmp_path: Path) -> None:
    data = config_folder(tmp_path, case)
    warehouse = tmp_path / "out" / "w.duckdb"
    store = ingest_store_path(warehouse)
    before = snapshot(tmp_path)
    with PipeWatch([data / C / "users.csv"]) as watch:
        if case.error:
            with pytest.raises(ConfigError) as raised:
                result = ingest(data, store)
                build(store, warehouse, RunParams(AS_OF), result.current_config)
            assert case.error in str(raised.value)
            assert "\n" not in str(raised.value)
            assert not warehouse.exists()  # nothing published
        else:
            con = run_pipeline(data, warehouse, AS_OF)
    assert watch.opened == []
    changed = {k for k in before.keys() | snapshot(tmp_path).keys()}
    changed -= {k for k, v in snapshot(tmp_path).items() if before.get(k) == v}
    assert all(k.split("/")[0] == "out" for k in changed), sorted(changed)
    if case.error:
        return
    got = {
        (r["file"], r["row_number"]): r["reason"]
        for r in rows(con, "SELECT file, row_number, reason FROM quarantine")
    }
    if case.quarantined:
        path, row, words = case.quarantined
        assert list(got) == [(path, row)], got
        assert words in got[(path, row)], got
    else:
        assert got == {}
    for m in rows(con, "SELECT * FROM ingest_manifest"):
        assert m["rows_read"] == m["rows_loaded"] + m["rows_quarantined"], m
    if case.what.startswith("duplicate client") or "by case and spaces" in case.what:
        assert rows(con, "SELECT client_id, client_name FROM clients ORDER BY 1") == [
            {"client_id": "acme", "client_name": "Acme"},
            {"client_id": "beta", "client_name": "Beta"},
            {"client_id": "unassigned", "client_name": rows(con, "FROM clients")[2]["client_name"]},
        ]
    con.close()


def test_a_config_error_is_one_line_from_the_command(prefect_api: str, tmp_path: Path) -> None:
    """`creditrecon nightly` as a subprocess: exit 1 and only the one message naming the file
    and rows (Prefect's own log kept off the terminal), no traceback, nothing published."""
    creditrecon = str(Path(sys.executable).parent / "creditrecon")
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    }
    by_name = {c.what: c for c in CONFIG_CASES}
    for case in (by_name["contracts overlap"], by_name["contracts.csv is a folder"]):
        data = config_folder(tmp_path / case.what.replace(" ", "_"), case)
        run = subprocess.run(
            [creditrecon, "nightly", "--data", str(data), "--as-of", "2025-10-31"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert run.returncode == 1, run.stdout + run.stderr
        out = run.stdout + run.stderr
        assert "Traceback" not in out
        # the whole output is the message (a console may wrap it; the words are these)
        said = " ".join(out.split())
        assert case.error and case.error in said, said
        message = said[said.index("config/") :]
        assert said in (f"creditrecon nightly failed: {message}", f"creditrecon nightly: {message}")
        assert not (data / "warehouse" / "creditrecon.duckdb").exists()


# --- statements: ids never choose the folder ---------------------------------------------------

HOSTILE_CLIENT_IDS = [
    "../../../x",
    "/tmp/absolute",
    "javascript:alert(1)",
    "index",
    'a"b<script>alert(2)</script>',
    "..",
    "con",
    "back\\slash",
    "x.",
]


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [v or "" for k, v in attrs if k == "href"]


@pytest.fixture(scope="module")
def hostile_statements(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Statements of October for clients with hostile ids: (the month's folder, files)."""
    root = tmp_path_factory.mktemp("hostile-statements")
    ids = ["acme", *HOSTILE_CLIENT_IDS]
    quoted = ['"' + i.replace('"', '""') + '"' for i in ids]
    files = dict(CONFIG)
    files[C + "clients.csv"] = "client_id,client_name\n" + "".join(
        f"{q},Name {n}\n" for n, q in enumerate(quoted)
    )
    files[C + "allocations.csv"] = "vendor,client_id,effective_month,monthly_credits\n" + "".join(
        f"zoominfo,{q},2025-10,10\n" for q in quoted
    )
    data = write_folder(root / "agency", files)
    warehouse = root / "w" / "w.duckdb"
    con = run_pipeline(data, warehouse, AS_OF)
    assert sorted(r["client_id"] for r in rows(con, "FROM clients")) == sorted([*ids, "unassigned"])
    con.close()
    before = snapshot(root)
    out = root / "w" / "statements"
    written = write_statements(warehouse, out, dt.date(2025, 10, 1))
    new = set(snapshot(root)) - set(before)
    assert all(k.startswith("w/statements") for k in new), sorted(new)
    return (out / "2025-10").resolve(), written


def test_statements_of_hostile_client_ids_stay_in_their_folder(
    hostile_statements: tuple[Path, list[Path]],
) -> None:
    folder, written = hostile_statements
    assert all(p.resolve().parent == folder for p in written)
    ids = ["acme", *HOSTILE_CLIENT_IDS]
    assert len(written) == 2 * len(ids) + 1  # an .html and a .csv each, and index.html
    assert len({p.name.lower() for p in written}) == len(written)
    links = Links()
    links.feed((folder / "index.html").read_text())
    assert len(links.hrefs) == len(ids)
    for href in links.hrefs:
        assert "/" not in href and ":" not in href and "\\" not in href, href
        assert (folder / href).is_file()
    index = (folder / "index.html").read_text()
    assert "<script>" not in index and "&lt;script&gt;" in index


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="needs Chromium (.ci/run installs it)"
)
def test_every_overview_link_opens_its_statement_in_chromium(
    hostile_statements: tuple[Path, list[Path]],
    browser: Any,  # noqa: F811  (the fixture imported above)
) -> None:
    """Clicking each client's link opens that client's page in the folder; no script runs."""
    folder, _ = hostile_statements
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto((folder / "index.html").as_uri())
    names = [a.inner_text() for a in page.query_selector_all("a[href]")]
    assert sorted(names) == sorted(f"Name {n}" for n in range(len(HOSTILE_CLIENT_IDS) + 1))
    for name in names:
        page.goto((folder / "index.html").as_uri())
        page.get_by_role("link", name=name, exact=True).click()
        assert page.url.startswith(folder.as_uri() + "/"), page.url
        assert page.title().startswith(f"{name}: credit statement, October 2025")
    assert dialogs == []
    page.close()


@given(st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=8, unique=True))
def test_no_id_can_change_the_folder_or_share_a_file(ids: list[str]) -> None:
    stems = file_stems(ids)
    folder = Path("/srv/statements/2025-10")
    for stem in stems.values():
        for suffix in (".html", ".csv"):
            assert (folder / (stem + suffix)).resolve().parent == folder
        assert "/" not in stem and "\\" not in stem and "\0" not in stem
        assert not stem.startswith(".") and stem.lower() != "index"
    assert len({s.lower() for s in stems.values()}) == len(ids)


# --- paths with an apostrophe, spaces and unicode ---------------------------------------------


def test_sql_string_doubles_quotes_and_refuses_nul() -> None:
    con = duckdb.connect()
    for text in ["O'Brien", "''", "a'; DROP TABLE x; --", "données ☃", "\\'"]:
        assert con.sql(f"SELECT {sql_string(text)}").fetchall() == [(text,)]
    with pytest.raises(ValueError, match="NUL"):
        sql_string("a\0b")


def test_a_warehouse_and_data_folder_named_o_brien(tmp_path: Path) -> None:
    """Every ATTACH, COPY and read_csv of the run, its close and its statements work on a
    path with an apostrophe, spaces and unicode."""
    from transforms.close import close_month

    data = write_folder(
        tmp_path / "O'Brien's données" / "agency x",
        {
            **CONFIG,
            X + "plain.csv": export("1300000001"),
            X + "again.csv": export("1300000001"),  # charged again: a dispute
            D + "l.csv": listing(
                "L1,plain,plain.csv,ann@agency.test,2025-10-02 10:00:00,Contacts,1,1",
                "L2,again,again.csv,ann@agency.test,2025-10-03 10:00:00,Contacts,1,1",
            ),
        },
    )
    warehouse = tmp_path / "l'entrepôt d'O'Brien" / "crédits 'x'.duckdb"
    con = run_pipeline(data, warehouse, dt.date(2025, 11, 5))
    assert rows(
        con,
        "SELECT client_id, charged_credits FROM monthly_balances "
        "WHERE month = '2025-10-01' ORDER BY 1",
    ) == [
        {"client_id": "acme", "charged_credits": 1},
        {"client_id": "beta", "charged_credits": 0},
    ]
    con.close()
    parquet = warehouse.with_name(warehouse.stem + "-parquet")
    assert (parquet / "monthly_balances").is_dir()
    assert list(warehouse.with_name(warehouse.stem + "-disputes").glob("*.csv"))
    store = ingest_store_path(warehouse)
    close_month(store, warehouse, dt.date(2025, 10, 1), dt.date(2025, 11, 5))
    result = ingest(data, store)
    build(store, warehouse, RunParams(dt.date(2025, 11, 5)), result.current_config)
    written = write_statements(warehouse, warehouse.with_name("s'tatements"), dt.date(2025, 10, 1))
    assert {p.name for p in written} == {
        "acme.html",
        "acme.csv",
        "beta.html",
        "beta.csv",
        "index.html",
    }
