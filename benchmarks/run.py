"""Benchmark: the nightly run against the floor of just reading the same CSVs with DuckDB.

    python benchmarks/run.py --records 1000000 10000000

For each size it generates a synthetic folder (once, under benchmarks/out/), then times,
each in a fresh process with its peak memory: the floor (DuckDB reads every input CSV into
a table on disk, nothing else), a full rebuild (ingest + build a new warehouse, no Prefect),
and an incremental night (one more day of files, added to that warehouse). Results are appended
to benchmarks/results.md with the machine noted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
AS_OF = "2025-07-02"

FLOOR = """
import duckdb, glob, sys
data = sys.argv[1]
con = duckdb.connect(sys.argv[2])
for name, folder in [("exports", "exports"), ("listings", "downloads"), ("usage", "usage")]:
    files = f"{data}/inbox/zoominfo/{folder}/*.csv"
    if glob.glob(files):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv(?, "
                    "all_varchar=true, union_by_name=true, filename=true)", [files])
con.close()
"""

NIGHT = """
import datetime as dt, sys, time
from pathlib import Path
from transforms.build import RunParams, build
from transforms.ingest import ingest, ingest_store_path
warehouse = Path(sys.argv[2])
store = ingest_store_path(warehouse)
started = time.perf_counter()
result = ingest(Path(sys.argv[1]), store)
print("STEP", time.perf_counter() - started, "ingest")
build(
    store, warehouse, RunParams(dt.date.fromisoformat(sys.argv[3])), result.current_config,
    on_step=lambda name, seconds: print("STEP", seconds, name),
    on_note=lambda note: print("NOTE", note),
)
"""

# Peak memory is the kernel's high-water mark of this process (VmHWM), in KiB. Not
# getrusage's ru_maxrss: that survives exec, so a child of a big parent (the generator at
# 50M) would report the parent's size.
MEASURE = """
import resource, sys, time
code = sys.argv.pop(1)
start = time.perf_counter()
exec(compile(code, "<step>", "exec"), {"__name__": "__main__"})
seconds = time.perf_counter() - start
try:
    status = open("/proc/self/status").read().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("RESULT", seconds, peak)
"""


def step(code: str, *args: str) -> tuple[float, float, dict[str, float], str]:
    """Seconds, peak resident memory (MiB), the steps it reported (STEP seconds name) and
    how it built (NOTE ...) of `code` run in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    _, seconds, rss_kb = line.split()
    steps = {
        name: float(secs)
        for _, secs, name in (
            s.split(maxsplit=2) for s in out.splitlines() if s.startswith("STEP ")
        )
    }
    notes = [s.removeprefix("NOTE ") for s in out.splitlines() if s.startswith("NOTE ")]
    return float(seconds), int(rss_kb) / 1024, steps, "; ".join(notes)


def slowest(steps: dict[str, float], n: int = 6) -> str:
    top = sorted(steps.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} {secs:.1f} s" for name, secs in top)


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
    mem = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def run(records: int) -> dict[str, float | str]:
    from flows.synthetic import add_day, generate

    root = OUT / str(records)
    data = root / "data"
    if not (data / "config").exists():
        shutil.rmtree(root, ignore_errors=True)
        generated = generate(data, records=records, months=6)
        (root / "generated.json").write_text(json.dumps(generated))
    generated = json.loads((root / "generated.json").read_text())
    for p in root.glob("*.duckdb*"):
        p.unlink()
    shutil.rmtree(root / "warehouse-parquet", ignore_errors=True)
    # A previous incremental day would make the full rebuild bigger: start from the base set.
    for p in (data / "inbox").rglob("day*"):
        p.unlink()

    floor_s, floor_mb, _, _ = step(FLOOR, str(data), str(root / "floor.duckdb"))
    full_s, full_mb, full_steps, full_how = step(
        NIGHT, str(data), str(root / "warehouse.duckdb"), AS_OF
    )
    day = add_day(
        data, dt.date(2025, 7, 1), records=max(1000, records // 180), known_ids=generated["new_ids"]
    )
    inc_s, inc_mb, inc_steps, inc_how = step(
        NIGHT, str(data), str(root / "warehouse.duckdb"), AS_OF
    )
    return {
        "records": records,
        "day_records": day["export_rows"],
        "floor_s": floor_s,
        "floor_mb": floor_mb,
        "full_s": full_s,
        "full_mb": full_mb,
        "inc_s": inc_s,
        "inc_mb": inc_mb,
        "full_steps": slowest(full_steps),
        "inc_steps": slowest(inc_steps),
        "full_how": full_how,
        "inc_how": inc_how,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1_000_000])
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    results = [run(n) for n in args.records]
    lines = [
        f"\n## {dt.date.today()}: {machine()}\n",
        "| export rows | floor: DuckDB reads the CSVs | full rebuild | ratio | µs per row | "
        "incremental night (+rows) | peak memory floor / full / incremental |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['records']:,} | {r['floor_s']:.1f} s | {r['full_s']:.1f} s | "
            f"{r['full_s'] / r['floor_s']:.1f}x | {r['full_s'] / r['records'] * 1e6:.1f} | "
            f"{r['inc_s']:.1f} s (+{r['day_records']:,}) | "
            f"{r['floor_mb']:.0f} / {r['full_mb']:.0f} / {r['inc_mb']:.0f} MiB |"
        )
    lines.append("\nSlowest steps (seconds):\n")
    for r in results:
        lines.append(f"- {r['records']:,} full rebuild ({r['full_how']}): {r['full_steps']}")
        lines.append(f"- {r['records']:,} incremental night ({r['inc_how']}): {r['inc_steps']}")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(HERE / "results.md", "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
