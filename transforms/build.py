"""Build the analysts' warehouse from the ingest store and publish it atomically: an
incremental night when the night only appends (transforms/incremental.py), else a full
rebuild (transforms/full_rebuild.py). This module chooses, and is the only one that
knows both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from transforms import incremental as night
from transforms.config_checks import check_config
from transforms.full_rebuild import full_rebuild
from transforms.parquet import parquet_dir
from transforms.pipeline import AuditFailed, RunParams
from transforms.publish import RunLocked, run_lock

# For the flows and the CLI: what a caller of build() needs.
__all__ = ["AuditFailed", "RunLocked", "RunParams", "build", "parquet_dir", "run_lock"]


def build(
    store: Path,
    warehouse: Path,
    params: RunParams,
    current_config: dict[str, str | None],
    parquet: bool = True,
    on_step: Callable[[str, float], None] | None = None,
    incremental: bool = True,
    on_note: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Build every mart into a fresh file, audit it, then swap it in. Returns row counts.

    With ``incremental``, a night that only adds files after what the published warehouse
    already holds is added to it (transforms/incremental.py); any other night, or when
    that is not possible, is a full rebuild. ``on_note`` hears which, and why.
    Beside it, swapped in right after the warehouse: ``<name>-disputes/`` (a CSV per
    vendor and month for support tickets) and, with ``parquet``, ``<name>-parquet/``.
    ``on_step(name, seconds)`` hears how long each step and each phase of the publish took.
    """
    check_config(store, current_config)
    reason = "asked for"
    if incremental:
        try:
            counts, how = night.build_night(
                store, warehouse, params, current_config, parquet, on_step
            )
        except night.NotIncremental as exc:
            reason = str(exc)
        except AuditFailed as exc:
            # Something the night's checks did not foresee: the full rebuild is the reference
            # (and fails the same way if the data itself breaks a rule).
            reason = f"the incremental result failed an audit ({exc})"
        else:
            if on_note:
                on_note(how)
            return counts
    if on_note:
        on_note(f"full rebuild: {reason}")
    return full_rebuild(store, warehouse, params, current_config, parquet, on_step, reason)
