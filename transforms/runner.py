"""The models and the order they run in, from their declarations.

A model is ``transforms/models/<area>/<name>.toml`` (its declaration) and the relation
``<name>`` it makes: ``<name>.sql`` beside it, or the Python callable it names
(``python = "module:function"``, taking the build's connection). The declaration says
what it reads; from that the runner derives the order (each model after what it reads;
otherwise in the order of the files' paths), and when an intermediate is dropped: right
after the last model that needs it, counting a view's readers as its own. Every record
goes through a few intermediates that hold it whole (about 1 GB at 10M records); past
the memory limit DuckDB spills to disk, and at 10M records keeping them cost 30 s of a
75 s build.

Keys beyond the shared ones (description, kind, reads, grain, partition, published,
[columns]):

- ``python``: the callable that makes the relation, instead of a .sql file;
- ``also_creates``: other relations the model makes, dropped with it (a Python model
  working in several tables);
- ``then``: a callable run right after the model, changing it in place (the close's
  rule 8: a closed month keeps its entries and balances);
- ``keep``: an intermediate read after the models (by the audits or an incremental
  night's checks), never dropped;
- ``parquet = false``: a published table with no Parquet copy;
- ``finish``: written by the build itself once the models have run (run_info).

``kind`` is what a full rebuild makes: ``table`` and ``view`` as in SQL; ``in_place``:
written straight into the new warehouse file (the ledger: the one published table as
big as the records; building it in memory, then copying it, cost 2 s more at 10M records).

``[night]`` says how an incremental night (transforms/incremental.py) makes it; without
it, the model is recomputed. Its ``kind``:

- ``recomputed``: run as in a full rebuild, on what the night holds (the night's new
  rows, or the merged ledger); a published one replaces the published table;
- ``merged``: the night's rows merged into the published table in place (a few rows into
  millions); ``merge`` names the callable that does it, returning the Parquet partitions
  it changed; the models after it read the merged table;
- ``added``: the night's rows added to the published ones (or the published run's);
  ``add`` names the callable that does it; the models after it read the whole.

and, for any kind:

- ``before``: a callable run right before the model, with the night's eligibility checks
  and the prior state it needs from the published warehouse (raises NotIncremental);
- ``step``: the callable that makes the model at night instead of its own;
- ``then = false``: the model's ``then`` is not run at night.

The night's callables live in transforms/incremental.py; each takes the connection.
"""

from __future__ import annotations

import functools
import importlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from transforms.failpoints import failpoint

MODELS = Path(__file__).parent / "models"
# Folders of models/ that hold no models: the vendors' adapters (run by the vendor_records
# model), the audits, and the table macros published with the marts.
NOT_MODELS = ("vendors", "audits", "macros")
# What the build database holds before any model runs (transforms/pipeline.py connect).
BUILD_INPUTS = frozenset(
    {
        "current_config_files",
        "vendor_rules",
        "sources",
        "build_files",
        "prior_charges",
        "prior_lot_draws",
        "rule_rejects",
        "staged_rows",
        "rejected_raw_rows",
    }
)
KINDS = ("table", "view", "in_place")
NIGHT_KINDS = ("recomputed", "merged", "added")
# The key naming the callable that puts the night's rows in place, by night kind.
NIGHT_CALLABLE = {"merged": "merge", "added": "add"}
NIGHT_KEYS = ("kind", "before", "step", "then", "merge", "add")
# Table macros published with the marts (created after the build's own tables are dropped).
MACROS = sorted((MODELS / "macros").glob("*.sql"))

Step = Callable[[duckdb.DuckDBPyConnection], object]


class ModelError(Exception):
    """The declarations do not make a pipeline (an unknown relation, a cycle, ...)."""


@dataclass(frozen=True)
class Night:
    """How an incremental night makes a model (its declaration's ``[night]``)."""

    kind: str = "recomputed"
    before: str | None = None
    step: str | None = None
    then: bool = True
    merge: str | None = None
    add: str | None = None


@dataclass(frozen=True)
class Model:
    name: str
    path: Path  # the declaration
    description: str
    kind: str
    reads: tuple[str, ...]
    published: bool
    grain: tuple[str, ...] = ()
    partition: str | None = None
    parquet: bool = True
    columns: dict[str, str] = field(default_factory=dict)
    python: str | None = None
    then: str | None = None
    also_creates: tuple[str, ...] = ()
    keep: bool = False
    finish: bool = False
    night: Night = Night()

    @property
    def relations(self) -> tuple[str, ...]:
        return (self.name, *self.also_creates)

    def step(self) -> Step:
        if self.python:
            return _callable(self.python)
        sql = self.path.with_suffix(".sql").read_text()
        return lambda con: con.execute(sql)


def resolve(ref: str) -> Callable[..., Any]:
    """The callable a declaration names (``module:function``)."""
    module, _, function = ref.partition(":")
    found: Callable[..., Any] = getattr(importlib.import_module(module), function)
    return found


def _callable(ref: str) -> Step:
    step: Step = resolve(ref)
    return step


def _night(where: Path, d: dict[str, Any], published: bool) -> Night:
    """The declaration's ``[night]`` table, checked."""
    if not isinstance(d, dict):
        raise ModelError(f"{where}: [night] is not a table")
    unknown = sorted(set(d) - set(NIGHT_KEYS))
    if unknown:
        raise ModelError(f"{where}: [night] has no key {unknown[0]!r} ({', '.join(NIGHT_KEYS)})")
    night = Night(**d)
    if night.kind not in NIGHT_KINDS:
        raise ModelError(
            f"{where}: night kind {night.kind!r} is not one of {', '.join(NIGHT_KINDS)}"
        )
    if not isinstance(night.then, bool):
        raise ModelError(f"{where}: [night] then is true or false")
    for key in ("before", "step", "merge", "add"):
        ref = getattr(night, key)
        if ref is not None and (not isinstance(ref, str) or ref.count(":") != 1):
            raise ModelError(f'{where}: [night] {key} is not a "module:function"')
    for kind, put in NIGHT_CALLABLE.items():
        if kind == night.kind and getattr(night, put) is None:
            raise ModelError(f"{where}: night kind {kind!r} names its {put} callable")
        if kind != night.kind and getattr(night, put) is not None:
            raise ModelError(f"{where}: {put} is only for night kind {kind!r}")
    if night.kind == "merged" and not published:
        raise ModelError(f"{where}: a merged model is merged into a published table")
    return night


def _load(path: Path, models_dir: Path) -> Model:
    where = path.relative_to(models_dir)
    try:
        with open(path, "rb") as f:
            d: dict[str, Any] = tomllib.load(f)
        model = Model(
            name=path.stem,
            path=path,
            description=d["description"],
            kind=d["kind"],
            reads=tuple(d["reads"]),
            published=d["published"],
            grain=tuple(d.get("grain", ())),
            partition=d.get("partition"),
            parquet=d.get("parquet", True),
            columns=dict(d.get("columns", {})),
            python=d.get("python"),
            then=d.get("then"),
            also_creates=tuple(d.get("also_creates", ())),
            keep=d.get("keep", False),
            finish=d.get("finish", False),
            night=_night(where, d.get("night", {}), d["published"]),
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ModelError(f"{where}: not a model declaration ({exc!r})") from None
    if model.kind not in KINDS:
        raise ModelError(f"{where}: kind {model.kind!r} is not one of {', '.join(KINDS)}")
    if not model.finish and not model.python and not path.with_suffix(".sql").exists():
        raise ModelError(f"{where}: no {path.stem}.sql beside it and no python callable")
    if model.published and not model.columns:
        raise ModelError(f"{where}: a published model describes its [columns]")
    return model


@dataclass(frozen=True)
class Plan:
    """The models in the order they run, and what to drop after each."""

    models: dict[str, Model]  # every model by name, in run order (finish ones last)
    drop_after: dict[str, tuple[str, ...]]

    @property
    def order(self) -> list[Model]:
        """The models the runner runs, in order."""
        return [m for m in self.models.values() if not m.finish]

    @property
    def published(self) -> list[Model]:
        return [m for m in self.models.values() if m.published]

    @property
    def merged(self) -> list[str]:
        """Published tables an incremental night changes in place (night kind ``merged``);
        it recomputes every other one whole."""
        return [m.name for m in self.order if m.night.kind == "merged"]

    def parquet(self) -> dict[str, str | None]:
        """Published tables copied as Parquet, and the month column each is partitioned by."""
        return {m.name: m.partition for m in self.published if m.parquet}

    def run(
        self,
        con: duckdb.DuckDBPyConnection,
        model: Model,
        then: bool = True,
        step: Step | None = None,
    ) -> None:
        """One model (and its ``then``, unless told not to); ``step`` makes it instead of
        its own SQL or callable (an incremental night draws on what is left of the lots)."""
        failpoint(f"build:step:{model.name}")
        try:
            (step or model.step())(con)
            if then and model.then:
                _callable(model.then)(con)
        except duckdb.Error as exc:
            raise RuntimeError(f"step {model.name} failed: {exc}") from exc

    def release(self, con: duckdb.DuckDBPyConnection, model: Model) -> None:
        """Drop what no model after ``model`` reads."""
        for relation in self.drop_after.get(model.name, ()):
            is_view = con.execute(
                "SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [relation]
            ).fetchall()[0][0]
            con.execute(f"DROP {'VIEW' if is_view else 'TABLE'} IF EXISTS {relation}")


def _ordered(models: list[Model], maker: dict[str, str]) -> list[Model]:
    """Kahn's order: a model once all it reads is made; ties in the order models become
    ready, then by path (stable: the same declarations give the same order)."""
    by_name = {m.name: m for m in models}
    needs = {m.name: {maker[r] for r in m.reads if r in maker} - {m.name} for m in models}
    readers: dict[str, list[str]] = {m.name: [] for m in models}
    for name, inputs in needs.items():
        for i in inputs:
            readers[i].append(name)
    ready = [m.name for m in models if not needs[m.name]]
    done: list[Model] = []
    while ready:
        name = ready.pop(0)
        done.append(by_name[name])
        for r in readers[name]:
            needs[r].discard(name)
            if not needs[r]:
                ready.append(r)
    if len(done) < len(models):
        stuck = sorted(set(by_name) - {m.name for m in done})
        raise ModelError("models read each other in a cycle: " + ", ".join(stuck))
    return done


def plan(models_dir: Path = MODELS) -> Plan:
    def in_models(p: Path) -> bool:
        return p.relative_to(models_dir).parts[0] not in NOT_MODELS

    models = [_load(p, models_dir) for p in sorted(filter(in_models, models_dir.rglob("*.toml")))]
    for sql in sorted(filter(in_models, models_dir.rglob("*.sql"))):
        if not sql.with_suffix(".toml").exists():
            where = sql.relative_to(models_dir)
            raise ModelError(f"{where}: a model needs its declaration beside it ({sql.stem}.toml)")
    maker: dict[str, str] = {}
    for m in models:
        for r in m.relations:
            if r in maker or r in BUILD_INPUTS:
                raise ModelError(f"{m.path.relative_to(models_dir)}: {r} is made twice")
            maker[r] = m.name
    for m in models:
        unknown = [r for r in m.reads if r not in maker and r not in BUILD_INPUTS]
        if unknown:
            raise ModelError(
                f"{m.path.relative_to(models_dir)}: reads {unknown[0]}, which no model makes"
            )
    run = _ordered([m for m in models if not m.finish], maker)
    finish = [m for m in models if m.finish]
    # Last use of each model: the last model that reads it, or reads a view that does.
    position = {m.name: i for i, m in enumerate(run)}
    last: dict[str, int] = {}
    for m in reversed(run):
        for r in {maker[r] for r in m.reads if r in maker} - {m.name}:
            used = max(position[m.name], last.get(m.name, -1) if m.kind == "view" else -1)
            last[r] = max(last.get(r, -1), used)
    kept = {maker[r] for m in finish for r in m.reads if r in maker}
    drop_after: dict[str, list[str]] = {}
    for m in run:
        if m.published or m.keep or m.name in kept or m.name not in last:
            continue
        drop_after.setdefault(run[last[m.name]].name, []).extend(m.relations)
    return Plan(
        models={m.name: m for m in [*run, *finish]},
        drop_after={k: tuple(v) for k, v in drop_after.items()},
    )


@functools.cache
def models() -> Plan:
    """The plan of transforms/models/ (read once a process)."""
    return plan()


def grain_audit(plan: Plan, rows: dict[str, str] | None = None) -> str:
    """One query: each published model with more rows than distinct grain keys, and how
    many more. ``rows`` names, for some, the relation holding the rows to check (an
    incremental night checks only its new ledger entries). Keys are counted exactly only
    if their hashes are not all distinct (distinct hashes mean distinct keys): counting
    10M distinct hashes takes two thirds of the time."""
    parts = []
    for m in plan.published:
        if not m.grain:
            continue
        table = (rows or {}).get(m.name, m.name)
        key = ", ".join(m.grain)
        key = key if len(m.grain) == 1 else f"({key})"
        parts.append(
            f"SELECT '{m.name}' AS mart, count(*) - count(DISTINCT {key}) AS extra_rows "
            f"FROM {table} WHERE (SELECT count(*) > count(DISTINCT hash({key})) FROM {table}) "
            f"HAVING count(*) - count(DISTINCT {key}) > 0"
        )
    return " UNION ALL ".join(parts) or "SELECT NULL WHERE false"
