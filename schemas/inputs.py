"""pandera schemas for every input file, and where each input lives in a data folder.

A model's field is a canonical column, and a model lists only the columns the rules or
the marts read: the others of a file are neither read nor kept. A field's type says how
the raw text is parsed (`schemas.parse`), ``metadata={"parse": ...}`` refines that (ids,
user names, months), and its checks say what a parsed value must satisfy. A non-nullable
field is a required header: a file without it is quarantined whole. Header spellings live
in ``schemas/headers/<vendor>.toml``, not here.

A vendor may instead declare its inputs in that TOML (``[inputs.<kind>]``: the inbox
folder, a description and each column's type, whether it is required and its bounds):
``declared_sources`` builds the same model from it, so adding such a vendor touches no
Python. The hand-written models below are for checks a declaration cannot say.
"""

from __future__ import annotations

import datetime as dt
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

import pandera.polars as pa

LOT_KINDS = ["gift", "purchase", "earned", "adjustment"]


class Clients(pa.DataFrameModel):
    """config/clients.csv: one row per client of the agency."""

    client_id: str = pa.Field(nullable=False, metadata={"parse": "key"})
    client_name: str = pa.Field(nullable=True)


class Users(pa.DataFrameModel):
    """config/users.csv: which client a vendor user works for, [valid_from, valid_to)."""

    vendor: str = pa.Field(nullable=False, metadata={"parse": "key"})
    user: str = pa.Field(nullable=False, metadata={"parse": "key"})
    client_id: str = pa.Field(nullable=False, metadata={"parse": "key"})
    valid_from: dt.date = pa.Field(nullable=True)
    valid_to: dt.date = pa.Field(nullable=True)


class Contracts(pa.DataFrameModel):
    """config/contracts.csv: the agency's subscription per vendor, [starts_on, ends_on)."""

    vendor: str = pa.Field(nullable=False, metadata={"parse": "key"})
    contract_id: str = pa.Field(nullable=False)
    starts_on: dt.date = pa.Field(nullable=False)
    ends_on: dt.date = pa.Field(nullable=False)
    pool_credits: int = pa.Field(ge=0, nullable=True)
    reset: str = pa.Field(isin=["monthly", "none"], nullable=False, metadata={"parse": "key"})
    overage_allowed: bool = pa.Field(nullable=True)
    cap_credits: int = pa.Field(ge=0, nullable=True)
    price_per_credit: float = pa.Field(ge=0, nullable=True)


class Allocations(pa.DataFrameModel):
    """config/allocations.csv: a client's monthly baseline from a month on, until superseded."""

    vendor: str = pa.Field(nullable=False, metadata={"parse": "key"})
    client_id: str = pa.Field(nullable=False, metadata={"parse": "key"})
    effective_month: dt.date = pa.Field(nullable=False, metadata={"parse": "period"})
    monthly_credits: int = pa.Field(ge=0, nullable=False)


class Grants(pa.DataFrameModel):
    """config/grants.csv: credits beyond the baseline (one-time gifts, purchases, ...)."""

    vendor: str = pa.Field(nullable=False, metadata={"parse": "key"})
    client_id: str = pa.Field(nullable=False, metadata={"parse": "key"})
    grant_id: str = pa.Field(nullable=False)
    kind: str = pa.Field(isin=LOT_KINDS, nullable=False, metadata={"parse": "key"})
    credits: int = pa.Field(gt=0, nullable=False)
    effective_on: dt.date = pa.Field(nullable=False)
    expires_on: dt.date = pa.Field(nullable=True)
    note: str = pa.Field(nullable=True)
    # A purchased block's own price, where the vendor sold it at one (else the contract's).
    price_per_credit: float = pa.Field(ge=0, nullable=True)


BILLING_POLICIES = ["at_cost", "cost_plus", "included"]


class Billing(pa.DataFrameModel):
    """config/billing.csv: how the agency re-bills a client's credits (one row per client,
    or per client and vendor): at cost, cost plus a markup, or included up to a cap."""

    client_id: str = pa.Field(nullable=False, metadata={"parse": "key"})
    vendor: str = pa.Field(nullable=True, metadata={"parse": "key"})  # blank: every vendor
    policy: str = pa.Field(isin=BILLING_POLICIES, nullable=False, metadata={"parse": "key"})
    markup_percent: float = pa.Field(ge=0, nullable=True)
    included_credits: int = pa.Field(ge=0, nullable=True)


class Reversals(pa.DataFrameModel):
    """config/reversals.csv: credits a vendor gave back after a support ticket."""

    vendor: str = pa.Field(nullable=False, metadata={"parse": "key"})
    ticket: str = pa.Field(nullable=False)
    reference: str = pa.Field(nullable=False, metadata={"parse": "id"})
    credits: int = pa.Field(gt=0, nullable=False)
    reversed_on: dt.date = pa.Field(nullable=False)


class ZoomInfoDownloads(pa.DataFrameModel):
    """ZoomInfo Bulk Exports and Downloads listing: one row per bulk export."""

    export_id: str = pa.Field(nullable=False, metadata={"parse": "id"})
    export_name: str = pa.Field(nullable=True)
    file_name: str = pa.Field(nullable=False, metadata={"parse": "file_name"})
    exported_by: str = pa.Field(nullable=False, metadata={"parse": "key"})
    exported_at: dt.datetime = pa.Field(nullable=False)
    # Minutes east of UTC when the text carried a zone or offset (Z, -05:00); null for wall
    # time. The adapter converts such a time to the reporting time zone.
    exported_at_utc_offset: int = pa.Field(
        nullable=True, metadata={"parse": "utc_offset:exported_at"}
    )
    export_type: str = pa.Field(
        isin=["contacts", "companies"], nullable=False, metadata={"parse": "key"}
    )
    records: int = pa.Field(ge=0, nullable=False)
    credits_used: int = pa.Field(ge=0, nullable=False)


class ZoomInfoExports(pa.DataFrameModel):
    """A ZoomInfo export file: one row per exported record (contact or company).

    Which ID is the record's key depends on the listing's Export Type, so a missing key
    is caught when the file is joined to its listing, not here. Only the IDs are read: the
    rules charge records by ID, so the contact's details (email, phones, title, and the 80
    other columns of a real file) are never copied into the ingest store.
    """

    contact_id: str = pa.Field(nullable=True, metadata={"parse": "id"})
    company_id: str = pa.Field(nullable=True, metadata={"parse": "id"})


class ZoomInfoUsage(pa.DataFrameModel):
    """ZoomInfo admin usage summary: one row per user and period."""

    user: str = pa.Field(nullable=False, metadata={"parse": "key"})
    period: dt.date = pa.Field(nullable=False, metadata={"parse": "period"})
    monthly_credits_used: int = pa.Field(ge=0, nullable=False)
    bulk_credits_used: int = pa.Field(ge=0, nullable=True)
    company_views: int = pa.Field(ge=0, nullable=True)
    contact_views: int = pa.Field(ge=0, nullable=True)


class SixSensePurchases(pa.DataFrameModel):
    """6sense purchase log: one row per purchased contact.

    Like a ZoomInfo export, only what the rules read: the contact's email, phone and
    company stay in the vendor's file.
    """

    purchased_at: dt.datetime = pa.Field(nullable=False)
    # Minutes east of UTC when the text carried a zone or offset (Z, -05:00); null for wall
    # time. The adapter converts such a time to the reporting time zone.
    purchased_at_utc_offset: int = pa.Field(
        nullable=True, metadata={"parse": "utc_offset:purchased_at"}
    )
    purchased_by: str = pa.Field(nullable=False, metadata={"parse": "key"})
    contact_id: str = pa.Field(nullable=False, metadata={"parse": "id"})
    # A+ (<10% bounce), A (10-20%), B (moderate), C (low); see README, purchase quality.
    email_confidence: str = pa.Field(
        isin=["A+", "A", "B", "C"], nullable=True, metadata={"parse": "grade"}
    )
    credits_used: int = pa.Field(ge=0, nullable=False)


class SixSenseUsage(pa.DataFrameModel):
    """6sense credit usage: one row per user at a date."""

    user: str = pa.Field(nullable=False, metadata={"parse": "key"})
    role: str = pa.Field(nullable=True)
    status: str = pa.Field(nullable=True)
    allocated_credits: int = pa.Field(ge=0, nullable=True)
    used_credits: int = pa.Field(ge=0, nullable=False)
    remaining_credits: int = pa.Field(nullable=True)
    as_of_date: dt.date = pa.Field(nullable=False)


class ApolloUsage(pa.DataFrameModel):
    """Apollo credit usage table: one row per credit-consuming action."""

    used_at: dt.datetime = pa.Field(nullable=False)
    # Minutes east of UTC when the text carried a zone or offset (Z, -05:00); null for wall
    # time. The adapter converts such a time to the reporting time zone.
    used_at_utc_offset: int = pa.Field(nullable=True, metadata={"parse": "utc_offset:used_at"})
    feature: str = pa.Field(nullable=True)
    action: str = pa.Field(nullable=True)
    description: str = pa.Field(nullable=True)
    credits: int = pa.Field(ge=0, nullable=False)
    data_requested: str = pa.Field(nullable=True, metadata={"parse": "key"})
    user: str = pa.Field(nullable=False, metadata={"parse": "key"})


@dataclass(frozen=True)
class Source:
    """One kind of input file: where it lives, which headers map it, which schema checks it."""

    name: str  # staging table is stg_<name>
    vendor: str  # 'config' for the agency's own files
    pattern: str  # glob relative to the data folder
    model: type[pa.DataFrameModel]
    headers: str  # section of schemas/headers/<vendor>.toml
    # Config files are snapshots: only the file present now counts. Inbox files accumulate.
    snapshot: bool = False
    required: bool = False
    # At least one of these columns must be present (for files whose key depends on type).
    any_of: tuple[str, ...] = ()


SOURCES: tuple[Source, ...] = (
    Source("clients", "config", "config/clients.csv", Clients, "clients", True, True),
    Source("users", "config", "config/users.csv", Users, "users", True, True),
    Source("contracts", "config", "config/contracts.csv", Contracts, "contracts", True, True),
    Source(
        "allocations", "config", "config/allocations.csv", Allocations, "allocations", True, True
    ),
    Source("grants", "config", "config/grants.csv", Grants, "grants", True),
    Source("reversals", "config", "config/reversals.csv", Reversals, "reversals", True),
    Source("billing", "config", "config/billing.csv", Billing, "billing", True),
    Source(
        "zoominfo_downloads",
        "zoominfo",
        "inbox/zoominfo/downloads/*.csv",
        ZoomInfoDownloads,
        "downloads",
    ),
    Source(
        "zoominfo_exports",
        "zoominfo",
        "inbox/zoominfo/exports/*.csv",
        ZoomInfoExports,
        "exports",
        any_of=("contact_id", "company_id"),
    ),
    Source("zoominfo_usage", "zoominfo", "inbox/zoominfo/usage/*.csv", ZoomInfoUsage, "usage"),
    Source(
        "sixsense_purchases",
        "6sense",
        "inbox/6sense/purchases/*.csv",
        SixSensePurchases,
        "purchases",
    ),
    Source("sixsense_usage", "6sense", "inbox/6sense/usage/*.csv", SixSenseUsage, "usage"),
    Source("apollo_usage", "apollo", "inbox/apollo/usage/*.csv", ApolloUsage, "usage"),
)

HEADERS_DIR = Path(__file__).parent / "headers"

# The types a declared column may have, and what each is parsed to (schemas/parse.py):
# key (trimmed, lower case), id (a record ID), period (a month), utc_offset:<column> (the
# offset that datetime column's text carried, in minutes east of UTC).
COLUMN_TYPES: dict[str, type] = {
    "text": str,
    "key": str,
    "id": str,
    "file_name": str,
    "int": int,
    "float": float,
    "bool": bool,
    "date": dt.date,
    "period": dt.date,
    "datetime": dt.datetime,
}
COLUMN_KEYS = {"type", "required", "min", "max", "values"}


def declared_model(name: str, where: str, spec: dict[str, typing.Any]) -> type[pa.DataFrameModel]:
    """The pandera model an ``[inputs.<kind>]`` table declares (``where`` names it in errors)."""
    columns = spec.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ValueError(f"{where}: no [columns]")
    namespace: dict[str, typing.Any] = {"__doc__": spec.get("description"), "__annotations__": {}}
    for column, declared in columns.items():
        unknown = set(declared) - COLUMN_KEYS if isinstance(declared, dict) else {"(not a table)"}
        if unknown:
            raise ValueError(f"{where}.columns.{column}: unknown {', '.join(sorted(unknown))}")
        kind = declared.get("type", "text")
        if kind.startswith("utc_offset:") and kind.removeprefix("utc_offset:") in columns:
            python_type: type = int
        elif kind in COLUMN_TYPES:
            python_type = COLUMN_TYPES[kind]
        else:
            raise ValueError(f"{where}.columns.{column}: unknown type {kind!r}")
        checks = {
            check: declared[key]
            for key, check in (("min", "ge"), ("max", "le"), ("values", "isin"))
            if key in declared
        }
        namespace["__annotations__"][column] = python_type
        namespace[column] = pa.Field(
            nullable=not declared.get("required", False), metadata={"parse": kind}, **checks
        )
    return type(name, (pa.DataFrameModel,), namespace)


def declared_sources() -> list[Source]:
    """The inputs vendors declare in their header TOML, ``[inputs.<kind>]`` (staged as
    stg_<vendor>_<kind>, header spellings in the TOML's ``[<kind>]``)."""
    out = []
    for path in sorted(HEADERS_DIR.glob("*.toml")):
        with open(path, "rb") as f:
            inputs = tomllib.load(f).get("inputs", {})
        vendor = path.stem
        for kind, spec in inputs.items():
            where = f"schemas/headers/{path.name}: [inputs.{kind}]"
            if not isinstance(spec.get("inbox"), str):
                raise ValueError(f'{where}: no inbox folder (inbox = "inbox/{vendor}/...")')
            name = f"{vendor}_{kind}"
            model = declared_model("".join(p.title() for p in name.split("_")), where, spec)
            out.append(Source(name, vendor, spec["inbox"], model, kind))
    return out


SOURCES += tuple(declared_sources())

VENDORS = sorted({s.vendor for s in SOURCES if s.vendor != "config"})

SOURCE_BY_NAME = {s.name: s for s in SOURCES}
