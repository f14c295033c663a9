"""The demo data folder shipped in data/demo: an agency sharing one ZoomInfo subscription,
one 6sense contract, one Apollo plan and one Lusha plan among its clients.

    python -m generators.demo_data data/demo

Deterministic (fixed seed): running it twice writes the same bytes. Four clients from
August to 10 November 2025; Bluepoint exactly as in the agency's note (1,000 a month,
October raised to 1,400 by a one-time gift, November 278 used and 722 left on the 10th).
Northwind overuses its 500. Dan moves from Harbor View to Crestline on 1 October. An intern
in no users.csv row exports for nobody (client unassigned).

6sense (from September): one contract pool of 300 without reset, 250 allotted to Harbor
View and 150 to Northwind (more than the pool holds); Northwind buys 3 contacts Harbor View
had bought (a cross-client repeat purchase), the vendor reverses one of them; every Email
Confidence grade. Apollo (from September): Crestline's 60 a month, one reveal in August,
before the plan began. So every reconciliation reason has a row: Harbor View's October
listing charged 12 of its 20 re-exports, a November listing row names a file that never
came, a usage summary for a user with no exports and one differing from the listings,
6sense reporting 2 more than its log shows, Apollo outside any contract. Lusha (from
November): Crestline's 30 a month, 12 contacts revealed and 3 revealed again for free.

ZoomInfo's real-world mess, on purpose:

a) the October listing was re-saved by Excel: BOM, dates like 10/07/2025 02:15 PM;
b) one of Bluepoint's October files was re-saved by Excel: BOM, "Mobile Phone" header,
   IDs as 1.300004217E+9, phones as 1.6175550123E+10;
c) Bluepoint's November file has two IDs Excel cut to 1.3E+09 and one empty ID;
d) a listing row with a day-first date (31/10/2025 17:40) naming a 10-row file;
e) a byte-identical copy of a Harbor View file saved as "... (1).csv";
f) a usage summary row with "n/a" credits; users.csv has a typo'd client id.

billing.csv re-bills Northwind's overage at cost plus 10%, so its statements show money;
settings.toml names the agency (Brightpath) and its logo at the top of every statement,
and sizes the alerts: Northwind's projected overage and Harbor View's forfeit are raised.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path

AGENCY = "brightpath.agency"
FIRST = [
    "Ava",
    "Ben",
    "Cara",
    "Dev",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ian",
    "Jo",
    "Kai",
    "Lea",
    "Max",
    "Nia",
    "Oli",
    "Pia",
    "Rex",
    "Sia",
    "Tom",
    "Uma",
    "Vic",
    "Wes",
    "Yara",
    "Zed",
]
LAST = [
    "Adams",
    "Brooks",
    "Chen",
    "Diaz",
    "Evans",
    "Fox",
    "Garcia",
    "Hughes",
    "Ito",
    "Jones",
    "Khan",
    "Lopez",
    "Moore",
    "Nakamura",
    "Olsen",
    "Patel",
    "Quinn",
    "Reyes",
    "Singh",
    "Tran",
]
TITLES = [
    "VP Marketing",
    "Director of Sales",
    "Head of Growth",
    "CFO",
    "Operations Manager",
    "IT Director",
    "Facilities Manager",
    "Procurement Lead",
    "CEO",
    "Office Manager",
]
COMPANIES = [
    "Acme Logistics",
    "Bayside Dental",
    "Cobalt Systems",
    "Delta Foods",
    "Evergreen Realty",
    "Fulcrum Labs",
    "Granite Builders",
    "Harbor Freight Co",
    "Ionic Health",
    "Juniper Retail",
    "Keystone Legal",
    "Lumen Energy",
    "Maple Clinics",
    "Northstar Media",
    "Orbit Travel",
]

CONTACTS_HEADER = [
    "ZoomInfo Contact ID",
    "ZoomInfo Company ID",
    "First Name",
    "Last Name",
    "Job Title",
    "Email Address",
    "Direct Phone Number",
    "Mobile phone",
    "Company Name",
    "Website",
]
COMPANIES_HEADER = [
    "ZoomInfo Company ID",
    "Company Name",
    "Website",
    "Company HQ Phone",
    "Employees",
    "Revenue (in 000s USD)",
]
LISTING_HEADER = [
    "Export ID",
    "Export Name",
    "File Name",
    "Exported By",
    "Export Date",
    "Export Type",
    "Records",
    "Credits Used",
]


def user(name: str) -> str:
    return f"{name}@{AGENCY}"


MELISSA, TOM, PRIYA, DAN = (
    user("melissa.ortiz"),
    user("tom.reyes"),
    user("priya.shah"),
    user("dan.kim"),
)
INTERN = user("intern.temp")
CLIENT_OF = {MELISSA: "bluepoint", TOM: "harborview", PRIYA: "northwind", INTERN: "unassigned"}
PREFIX = {
    "bluepoint": "bluepoint",
    "harborview": "harborview",
    "northwind": "northwind",
    "crestline": "crestline",
    "unassigned": "misc",
}


@dataclass
class Export:
    export_id: str
    user: str
    at: str  # ISO "2025-08-05 10:12:00"
    kind: str  # Contacts | Companies
    file_name: str
    rows: list[list[str]]
    credits: int  # what ZoomInfo's listing says it charged (new records)
    header: list[str]
    excel: bool = False  # written by an Excel re-save (b)
    delivered: bool = True  # False: listed, but its file never came


class Demo:
    def __init__(self) -> None:
        self.rnd = random.Random(20251110)
        self.next_contact = 1_300_004_200
        self.next_company = 400_120_000
        self.by_user_month: dict[tuple[str, str], list[list[str]]] = {}
        self.exports: list[Export] = []
        self.seq: dict[str, int] = {}

    def contact(self) -> list[str]:
        self.next_contact += self.rnd.randint(1, 9)
        first, last = self.rnd.choice(FIRST), self.rnd.choice(LAST)
        company = self.rnd.choice(COMPANIES)
        domain = company.lower().replace(" ", "") + ".example"
        phone = f"+1 617-555-{self.rnd.randint(0, 9999):04d}"
        mobile = f"+1 857-555-{self.rnd.randint(0, 9999):04d}" if self.rnd.random() < 0.6 else ""
        return [
            str(self.next_contact),
            str(400_000_000 + COMPANIES.index(company)),
            first,
            last,
            self.rnd.choice(TITLES),
            f"{first.lower()}.{last.lower()}@{domain}",
            phone,
            mobile,
            company,
            f"www.{domain}",
        ]

    def company(self) -> list[str]:
        self.next_company += self.rnd.randint(1, 9)
        side = self.rnd.choice(["North", "South", "East", "West", "Blue", "Red"])
        place = self.rnd.choice(["Harbor", "Ridge", "Valley", "Point", "Creek"])
        name = f"{side} {place} {self.rnd.choice(['LLC', 'Inc', 'Group'])}"
        domain = name.lower().replace(" ", "") + ".example"
        return [
            str(self.next_company),
            name,
            f"www.{domain}",
            f"+1 617-555-{self.rnd.randint(0, 9999):04d}",
            str(self.rnd.choice([12, 45, 120, 480, 2200])),
            str(self.rnd.choice([900, 4500, 21000, 88000])),
        ]

    def export(
        self,
        who: str,
        client: str,
        day: str,
        time: str,
        rows: list[list[str]],
        new: int,
        kind: str = "Contacts",
        excel: bool = False,
    ) -> Export:
        stamp = day.replace("-", "")[2:]
        self.seq[stamp] = self.seq.get(stamp, 0) + 1
        export_id = f"EXP-{stamp}-{self.seq[stamp]:02d}"
        suffix = "" if self.seq[stamp] == 1 else f"_{self.seq[stamp]}"
        file_name = f"{PREFIX[client]}_{kind.lower()}_{day}{suffix}.csv"
        header = CONTACTS_HEADER if kind == "Contacts" else COMPANIES_HEADER
        e = Export(export_id, who, f"{day} {time}", kind, file_name, rows, new, header, excel)
        self.exports.append(e)
        return e

    def month(
        self,
        who: str,
        client: str,
        month: str,
        new: int,
        days: list[str],
        reexports: list[list[str]] | None = None,
    ) -> list[list[str]]:
        """`new` fresh contacts for `who` in a month, split over `days`; re-exports go in
        the first export. Returns the new contacts (for later re-exports)."""
        fresh = [self.contact() for _ in range(new)]
        self.by_user_month[(who, month)] = fresh
        cuts = sorted(self.rnd.sample(range(1, new), len(days) - 1)) if len(days) > 1 else []
        parts = [fresh[a:b] for a, b in zip([0, *cuts], [*cuts, new], strict=True)]
        for i, (day, part) in enumerate(zip(days, parts, strict=True)):
            rows = (reexports or []) + part if i == 0 else part
            hour = f"{9 + i * 3:02d}:{self.rnd.randint(0, 59):02d}:00"
            self.export(who, client, f"{month}-{day}", hour, rows, len(part))
        return fresh


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def excel_number(value: str) -> str:
    """How Excel writes a long number it shows in scientific notation, every digit kept."""
    if not value:
        return value
    digits = value.lstrip("+").replace(" ", "").replace("-", "")
    return f"{digits[0]}.{digits[1:]}E+{len(digits) - 1}"


def excel_datetime(iso: str) -> str:
    day, time = iso.split(" ")
    y, m, d = day.split("-")
    hh, mm, _ = time.split(":")
    h = int(hh)
    return f"{m}/{d}/{y} {(h - 1) % 12 + 1:02d}:{mm} {'AM' if h < 12 else 'PM'}"


RITA = user("rita.gomez")  # Crestline's Apollo seat
PURCHASES_HEADER = [
    "Purchase Date",
    "Purchased By",
    "Source",
    "Contact ID",
    "Email",
    "Email Confidence",
    "Phone",
    "Company Name",
    "Company Domain",
    "Credits Used",
]
GRADES = ["A+"] * 3 + ["A"] * 4 + ["B"] * 2 + ["C", ""]


class SixSense:
    """6sense purchase logs and credit usage: Harbor View (tom) 60, 90 and 20 contacts in
    September, October and November; Northwind (priya) 40, 120 (3 of them Harbor View's
    September contacts again) and 30. Every contact costs 1 credit."""

    PLAN = {
        (TOM, "2025-09"): 60,
        (PRIYA, "2025-09"): 40,
        (TOM, "2025-10"): 90,
        (PRIYA, "2025-10"): 117,
        (TOM, "2025-11"): 20,
        (PRIYA, "2025-11"): 30,
    }

    def __init__(self) -> None:
        self.rnd = random.Random(6)
        self.next_id = 88_410_000
        logs: dict[str, list[list[str]]] = {}
        bought: dict[tuple[str, str], list[list[str]]] = {}
        for (who, month), n in self.PLAN.items():
            rows = [self.purchase(who, month) for _ in range(n)]
            if (who, month) == (PRIYA, "2025-10"):
                # 3 of Harbor View's September contacts, bought again by Northwind
                for first in bought[(TOM, "2025-09")][:3]:
                    again = list(first)
                    again[0], again[1] = f"{month}-14T15:{len(rows) % 60:02d}:00Z", PRIYA
                    rows.append(again)
                self.reversed_contact = rows[-1][3]
            bought[(who, month)] = rows
            logs.setdefault(month, []).extend(rows)
        self.files: dict[str, bytes] = {}
        for month, rows in logs.items():
            rows.sort(key=lambda r: r[0])
            self.files[f"inbox/6sense/purchases/6sense_purchases_{month}.csv"] = csv_text(
                PURCHASES_HEADER, rows
            ).encode()
        # Used to date at each month's end; on 31 October 6sense counts 2 more for priya
        # than its log shows.
        header = ["User Email", "Role", "Status", "Allocated Credits", "Used Credits",
                  "Remaining Credits", "As Of Date"]  # fmt: skip
        for day, months, extra in (
            ("2025-09-30", ["2025-09"], 0),
            ("2025-10-31", ["2025-09", "2025-10"], 2),
        ):
            usage = []
            for who, allocated in ((TOM, 250), (PRIYA, 150)):
                n = sum(len(bought[(who, m)]) for m in months) + (extra if who == PRIYA else 0)
                usage.append(
                    [who, "User", "Active", str(allocated), str(n), str(allocated - n), day]
                )
            self.files[f"inbox/6sense/usage/6sense_credit_usage_{day}.csv"] = csv_text(
                header, usage
            ).encode()

    def purchase(self, who: str, month: str) -> list[str]:
        self.next_id += self.rnd.randint(1, 40)
        first, last = self.rnd.choice(FIRST), self.rnd.choice(LAST)
        company = self.rnd.choice(COMPANIES)
        domain = company.lower().replace(" ", "") + ".example"
        day = self.rnd.randint(1, 7 if month == "2025-11" else 28)
        at = f"{month}-{day:02d}T{self.rnd.randint(13, 21):02d}:{self.rnd.randint(0, 59):02d}:00Z"
        source = self.rnd.choice(
            ["Acquire New Contacts", "Acquire New Contacts", "Legacy SI iFrame"]
        )
        phone = f"+1 312-555-{self.rnd.randint(0, 9999):04d}" if self.rnd.random() < 0.5 else ""
        return [at, who, source, str(self.next_id), f"{first.lower()}.{last.lower()}@{domain}",
                self.rnd.choice(GRADES), phone, company, domain, "1"]  # fmt: skip


def apollo_files() -> dict[str, bytes]:
    """Crestline's Apollo reveals: an email costs 1 credit, a mobile number 5, a re-reveal
    0. 28 August is before the plan began (outside any contract): 1 credit. September 2
    emails and 4 mobiles (22), October 5 emails, 5 mobiles and a re-reveal (30), November
    3 emails (3)."""
    rows = [
        [
            "Aug 28, 2025 04:10 PM",
            "People search",
            "Reveal",
            "Email of Ava Chen",
            "1",
            "Email",
            RITA,
        ]
    ]
    plan = {"2025-09": (2, 4, 0), "2025-10": (5, 5, 1), "2025-11": (3, 0, 0)}
    n = 0
    for month, (emails, mobiles, again) in plan.items():
        y, m = month.split("-")
        label = ["", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov"][
            int(m)
        ]
        for kind, count, credits in (("Email", emails, 1), ("Mobile", mobiles, 5)):
            for _ in range(count):
                n += 1
                who = f"{FIRST[n % len(FIRST)]} {LAST[n % len(LAST)]}"
                rows.append([f"{label} {n % 7 + 1:02d}, {y} 10:{n:02d} AM", "People search",
                             "Reveal", f"{kind} of {who}", str(credits),
                             "Phone" if kind == "Mobile" else "Email", RITA])  # fmt: skip
        for _ in range(again):
            rows.append([f"{label} 09, {y} 11:00 AM", "People search", "Reveal",
                         rows[-1][3], "0", rows[-1][5], RITA])  # fmt: skip
    header = ["Date", "Feature", "Action", "Description", "Credits", "Data requested", "User"]
    return {
        "inbox/apollo/usage/apollo_credit_usage_2025-11-10.csv": csv_text(header, rows).encode()
    }


def lusha_files() -> dict[str, bytes]:
    """Crestline's Lusha seat (from November, 30 credits a month, reset monthly): Rita
    reveals 12 contacts from 3 to 6 November (1 credit each) and 3 of them again on the 7th
    (free; Lusha shows 0): 12 charged, 18 left on the 10th, 3 free re-reveals."""
    rows = []
    for n in range(12):
        who = f"{FIRST[(n + 3) % len(FIRST)]} {LAST[(n + 5) % len(LAST)]}"
        rows.append([f"2025-11-{n // 3 + 3:02d} 09:{n * 4:02d}:00", RITA, f"LU-{8812040 + n}",
                     who, "Crestline Supply", "1"])  # fmt: skip
    for again in rows[:3]:
        rows.append(["2025-11-07 15:30:00", RITA, again[2], again[3], again[4], "0"])
    header = ["Date", "User", "Contact ID", "Full Name", "Company", "Credits"]
    return {"inbox/lusha/reveals/lusha_usage_2025-11-10.csv": csv_text(header, rows).encode()}


def write_demo(root: Path) -> None:
    demo = Demo()
    sixsense = SixSense()
    # Aug-Nov 2025. Bluepoint (melissa): 850, 920, 1310 + 120 re-exports, 278 + 45 re-exports.
    aug_bp = demo.month(MELISSA, "bluepoint", "2025-08", 850, ["05", "13", "26"])
    demo.month(TOM, "harborview", "2025-08", 600, ["04", "19"])
    demo.month(DAN, "harborview", "2025-08", 100, ["21"])
    aug_nw = demo.month(PRIYA, "northwind", "2025-08", 450, ["07", "22"])
    aug_nw_file = next(e for e in demo.exports if e.user == PRIYA and e.at.startswith("2025-08"))
    aug_nw_file.rows.append(list(aug_nw_file.rows[3]))  # the same row twice in one file
    assert aug_nw

    sep_bp = demo.month(MELISSA, "bluepoint", "2025-09", 920, ["03", "16", "29"])
    demo.month(TOM, "harborview", "2025-09", 730, ["08", "23"])
    demo.export(
        TOM,
        "harborview",
        "2025-09-11",
        "15:40:00",
        [demo.company() for _ in range(50)],
        50,
        kind="Companies",
    )
    demo.month(DAN, "harborview", "2025-09", 20, ["17"])
    demo.month(PRIYA, "northwind", "2025-09", 620, ["05", "18", "25"])

    demo.month(
        MELISSA,
        "bluepoint",
        "2025-10",
        1310,
        ["02", "14", "27"],
        reexports=demo.rnd.sample(aug_bp, 120),
    )
    demo.exports[-2].excel = True  # (b) one October file re-saved by Excel
    demo.month(
        TOM, "harborview", "2025-10", 700, ["07", "21"], reexports=demo.rnd.sample(sep_bp, 20)
    )
    # Harbor View's first October export: ZoomInfo charged 12 of its 20 re-exports
    next(e for e in demo.exports if e.user == TOM and e.at.startswith("2025-10")).credits += 12
    demo.month(DAN, "crestline", "2025-10", 180, ["09", "24"])
    demo.month(PRIYA, "northwind", "2025-10", 540, ["06", "20"])
    demo.month(INTERN, "unassigned", "2025-10", 35, ["15"])
    # (d) a listing row with a day-first date; its 10 contacts are in no other count
    day_first = demo.export(
        PRIYA, "northwind", "2025-10-31", "17:40:00", [demo.contact() for _ in range(10)], 10
    )

    demo.month(
        MELISSA, "bluepoint", "2025-11", 278, ["03", "06"], reexports=demo.rnd.sample(sep_bp, 45)
    )
    nov_bp = next(e for e in demo.exports if e.user == MELISSA and e.at.startswith("2025-11-06"))
    for bad in ("1.3E+09", "1.3E+09", ""):  # (c) rows the vendor listed but we cannot key
        row = demo.contact()
        row[0] = bad
        nov_bp.rows.append(row)
    demo.month(TOM, "harborview", "2025-11", 150, ["04"])
    demo.month(DAN, "crestline", "2025-11", 60, ["05"])
    demo.month(PRIYA, "northwind", "2025-11", 210, ["03", "07"])
    # Listed by ZoomInfo (15 records), but the file was never downloaded into the inbox:
    # its rows are never written, so none are drawn (the other files stay as they were).
    demo.export(TOM, "harborview", "2025-11-07", "16:20:00", [[]] * 15, 15).delivered = False

    files: dict[str, bytes] = {
        "config/clients.csv": b"client_id,client_name\nbluepoint,Bluepoint\n"
        b"harborview,Harbor View Realty\nnorthwind,Northwind Logistics\n"
        b"crestline,Crestline Dental\n",
        "config/users.csv": (
            "vendor,user,client_id,valid_from,valid_to\n"
            f"zoominfo,{MELISSA},bluepoint,2025-01-01,\n"
            f"zoominfo,{TOM},harborview,2025-01-01,\n"
            f"zoominfo,{PRIYA},northwind,2025-01-01,\n"
            f"zoominfo,{DAN},harborview,2025-01-01,2025-10-01\n"
            f"zoominfo,{DAN},crestline,2025-10-01,\n"
            f"zoominfo,{user('lena.park')},bluepont,2025-01-01,\n"
            f"6sense,{TOM},harborview,2025-01-01,\n"
            f"6sense,{PRIYA},northwind,2025-01-01,\n"
            f"apollo,{RITA},crestline,2025-01-01,\n"
            f"lusha,{RITA},crestline,2025-01-01,\n"
        ).encode(),
        "config/contracts.csv": b"vendor,contract_id,starts_on,ends_on,pool_credits,reset,"
        b"overage_allowed,cap_credits,price_per_credit\nzoominfo,ZI-2025,2025-01-01,2026-01-01,3000,monthly,true,3500,0.45\n"
        b"6sense,6S-2025,2025-09-01,2026-09-01,300,none,true,340,0.90\n"
        b"apollo,AP-2025,2025-09-01,2026-09-01,200,monthly,true,,0.20\n"
        b"lusha,LU-2025,2025-11-01,2026-09-01,100,monthly,false,,0.25\n",
        "config/allocations.csv": b"vendor,client_id,effective_month,monthly_credits\n"
        b"zoominfo,bluepoint,2025-08-01,1000\nzoominfo,harborview,2025-08-01,800\n"
        b"zoominfo,northwind,2025-08-01,500\nzoominfo,crestline,2025-10-01,300\n"
        b"6sense,harborview,2025-09-01,250\n6sense,northwind,2025-09-01,150\n"
        b"apollo,crestline,2025-09-01,60\nlusha,crestline,2025-11-01,30\n",
        "config/grants.csv": b"vendor,client_id,grant_id,kind,credits,effective_on,expires_on,"
        b"note\nzoominfo,bluepoint,G-2025-10-BP,gift,400,2025-10-01,,"
        b"One-time courtesy increase for October - not a new baseline\n",
        "config/reversals.csv": b"vendor,ticket,reference,credits,reversed_on\n"
        + f"6sense,6S-CASE-1042,{sixsense.reversed_contact},1,2025-10-20\n".encode(),
    }
    # How the agency re-bills: Northwind's overage at cost plus 10% (October: 40 ZoomInfo
    # credits x 0.45 x 1.1 = 19.80, 9 6sense credits x 0.90 x 1.1 = 8.91), Harbor View at
    # cost, Bluepoint's first 200 ZoomInfo credits beyond its own included each month.
    files["config/billing.csv"] = (
        b"client_id,vendor,policy,markup_percent,included_credits\n"
        b"northwind,,cost_plus,10,\nharborview,,at_cost,,\nbluepoint,zoominfo,included,,200\n"
    )
    # Who the statements are from, with a small logo (settings.toml [agency]); alerts sized
    # for the demo's clients: Harbor View's 350 to forfeit and Northwind's 130 over are
    # raised, Bluepoint's 166 and Northwind's 90 on 6sense are not.
    files["config/settings.toml"] = (
        b'[agency]\nname = "Brightpath Agency"\n'
        b'contact = "accounts@brightpath.agency, +1 617 555 0100"\nlogo = "config/logo.svg"\n'
        b"\n[alerts]\nprojected_forfeit_credits = 200\nprojected_overage_credits = 100\n"
    )
    files["config/logo.svg"] = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">'
        b'<rect width="32" height="32" rx="6" fill="#1f5f8b"/>'
        b'<path d="M9 8h9a6 6 0 0 1 0 12H9z" fill="#fff"/></svg>\n'
    )
    files.update(sixsense.files)
    files.update(apollo_files())
    files.update(lusha_files())
    for month in ("2025-08", "2025-09", "2025-10", "2025-11"):
        listed = [e for e in demo.exports if e.at.startswith(month) and e is not day_first]
        if month == "2025-10":
            listed.append(day_first)
        rows = []
        for e in sorted(listed, key=lambda e: e.at):
            at = (
                "31/10/2025 17:40"
                if e is day_first
                else (excel_datetime(e.at) if month == "2025-10" else e.at)
            )
            rows.append(
                [
                    e.export_id,
                    e.file_name.removesuffix(".csv").replace("_", " "),
                    e.file_name,
                    e.user,
                    at,
                    e.kind,
                    str(len(e.rows)),
                    str(e.credits),
                ]
            )
        text = csv_text(LISTING_HEADER, rows).encode()
        if month == "2025-10":  # (a) re-saved by Excel
            text = b"\xef\xbb\xbf" + text
        files[f"inbox/zoominfo/downloads/zoominfo_downloads_{month}.csv"] = text
    for e in demo.exports:
        if not e.delivered:
            continue
        if e.excel:
            header = ["Mobile Phone" if h == "Mobile phone" else h for h in e.header]
            rows = [
                [excel_number(r[0]), r[1], *r[2:6], excel_number(r[6]), excel_number(r[7]), *r[8:]]
                for r in e.rows
            ]
            files[f"inbox/zoominfo/exports/{e.file_name}"] = (
                b"\xef\xbb\xbf" + csv_text(header, rows).encode()
            )
        else:
            files[f"inbox/zoominfo/exports/{e.file_name}"] = csv_text(e.header, e.rows).encode()
    tom_sep = next(e for e in demo.exports if e.user == TOM and e.at.startswith("2025-09"))
    copy_name = tom_sep.file_name.replace(".csv", " (1).csv")
    files[f"inbox/zoominfo/exports/{copy_name}"] = files[
        f"inbox/zoominfo/exports/{tom_sep.file_name}"
    ]

    usage_header = [
        "User",
        "Period",
        "Monthly Credits Used",
        "Bulk Credits Used",
        "Company Views",
        "Contact Views",
    ]
    for month, label in (
        ("2025-08", "Aug 2025"),
        ("2025-09", "Sep 2025"),
        ("2025-10", "Oct 2025"),
        ("2025-11", "Nov 2025"),
    ):
        used: dict[str, int] = {}
        for e in demo.exports:
            if e.at.startswith(month) and e is not day_first:
                used[e.user] = used.get(e.user, 0) + e.credits
        rows = [
            [u, label, str(n), "0", str(demo.rnd.randint(5, 60)), str(demo.rnd.randint(20, 300))]
            for u, n in sorted(used.items())
        ]
        if month == "2025-08":  # 5 bulk credits the listings do not show
            rows = [[*r[:3], "5", *r[4:]] if r[0] == PRIYA else r for r in rows]
        if month == "2025-09":  # (f)
            rows.append([TOM, label, "n/a", "0", "3", "9"])
        if month == "2025-10":  # credits used by a user who exported nothing
            rows.append([user("lena.park"), label, "12", "0", "4", "10"])
        files[f"inbox/zoominfo/usage/usage_{month}.csv"] = csv_text(usage_header, rows).encode()

    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m generators.demo_data",
        description="Write the demo data folder (deterministic: the same bytes every time).",
    )
    parser.add_argument("folder", nargs="?", default="data/demo", type=Path)
    write_demo(parser.parse_args(argv).folder)


if __name__ == "__main__":
    main()
