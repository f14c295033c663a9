"""Benchmark: the nightly run against the floor (DuckDB just reading the CSVs) and the peer
(the one-script DuckDB answer an analyst might write, `benchmarks/peer.py`).

    python benchmarks/run.py --records 1000000 5000000 [--shapes wide narrow] [--repeat 3]

For each size and shape it generates a synthetic folder (once, under benchmarks/out/):
`wide` export files carry the contact's details as a vendor writes them (10 columns),
`narrow` ones only the record IDs the rules read. It then times, each in a fresh process
with its peak memory: the floor (DuckDB reads every input CSV into a table on disk,
nothing else), the peer, a full rebuild (ingest + build a new warehouse, no Prefect) with
the time of each step, and a night (one more day of files, added to that warehouse).
A tiny folder's full rebuild gives the fixed start-up (imports, setting up the stores,
publishing), which the ratio "work / peer" takes off; `creditrecon nightly` on that folder,
with a temporary Prefect server and against a running one, gives what a user waits for a
tiny night (docs/startup.md). With --repeat, each figure is the
median of that many rounds. Results are appended to benchmarks/results.md with the
machine and its load noted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
AS_OF = "2025-07-02"
TINY = 1_000

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

PEER = f"""
import runpy, sys
sys.argv = [{str(HERE / "peer.py")!r}, *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
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


@dataclass
class Timed:
    seconds: float
    peak_mb: float
    steps: dict[str, float] = field(default_factory=dict)
    how: str = ""


def step(code: str, *args: str) -> Timed:
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
    steps: dict[str, float] = {}
    for _, secs, name in (s.split(maxsplit=2) for s in out.splitlines() if s.startswith("STEP ")):
        steps[name] = steps.get(name, 0.0) + float(secs)
    notes = [s.removeprefix("NOTE ") for s in out.splitlines() if s.startswith("NOTE ")]
    return Timed(float(seconds), int(rss_kb) / 1024, steps, "; ".join(notes))


def median(runs: list[Timed]) -> Timed:
    """The median of each figure over the rounds (steps too, each on its own)."""
    names = {name for r in runs for name in r.steps}
    return Timed(
        statistics.median(r.seconds for r in runs),
        statistics.median(r.peak_mb for r in runs),
        {n: statistics.median(r.steps.get(n, 0.0) for r in runs) for n in names},
        runs[-1].how,
    )


def by_time(steps: dict[str, float], n: int | None = None) -> str:
    top = sorted(steps.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} {secs:.1f}" for name, secs in top if secs >= 0.05)


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


def folder(out: Path, records: int, shape: str) -> tuple[Path, dict[str, int]]:
    """The generated folder of that size and shape (written once) and what it holds."""
    from generators.synthetic import generate

    root = out / f"{shape}-{records}"
    data = root / "data"
    if not (root / "generated.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        generated = generate(data, records=records, months=6, narrow=shape == "narrow")
        (root / "generated.json").write_text(json.dumps(generated))
    return data, json.loads((root / "generated.json").read_text())


def fresh(root: Path) -> None:
    """Back to the base set of files and no warehouse, before a round."""
    for p in root.glob("*.duckdb*"):
        p.unlink()
    for p in root.glob("*-parquet"):
        shutil.rmtree(p)
    for p in root.glob("*-disputes"):
        shutil.rmtree(p)
    # A previous night's day would make the full rebuild bigger.
    for p in (root / "data" / "inbox").rglob("day*"):
        p.unlink()


@dataclass
class Measured:
    records: int
    shape: str
    day_records: int
    floor: Timed
    peer: Timed
    full: Timed
    night: Timed


def measure(out: Path, records: int, shape: str, repeat: int) -> Measured:
    from generators.synthetic import add_day

    data, generated = folder(out, records, shape)
    root = data.parent
    rounds: dict[str, list[Timed]] = {"floor": [], "peer": [], "full": [], "night": []}
    day_records = max(1000, records // 180)
    for _ in range(repeat):
        fresh(root)
        rounds["floor"].append(step(FLOOR, str(data), str(root / "floor.duckdb")))
        rounds["peer"].append(step(PEER, str(data), str(root / "peer.duckdb")))
        rounds["full"].append(step(NIGHT, str(data), str(root / "warehouse.duckdb"), AS_OF))
        add_day(
            data,
            dt.date(2025, 7, 1),
            records=day_records,
            known_ids=generated["new_ids"],
            narrow=shape == "narrow",
        )
        rounds["night"].append(step(NIGHT, str(data), str(root / "warehouse.duckdb"), AS_OF))
    fresh(root)
    return Measured(
        records,
        shape,
        day_records,
        *(median(rounds[k]) for k in ("floor", "peer", "full", "night")),
    )


def start_up(out: Path, repeat: int) -> Timed:
    """A full rebuild of a tiny folder: what every run costs whatever its size."""
    data, _ = folder(out, TINY, "narrow")
    runs = []
    for _ in range(repeat):
        fresh(data.parent)
        runs.append(step(NIGHT, str(data), str(data.parent / "warehouse.duckdb"), AS_OF))
    fresh(data.parent)
    return median(runs)


def command_start_up(out: Path, repeat: int) -> dict[str, float]:
    """`creditrecon nightly` on the tiny folder, as a user runs it: wall clock of the
    command (imports, checks, Prefect's flow and task runs, the summary), with a temporary
    Prefect server and against a running one (started here, stopped after)."""
    data, _ = folder(out, TINY, "narrow")
    home = out / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    creditrecon = str(Path(sys.executable).parent / "creditrecon")

    def night(extra: dict[str, str]) -> float:
        fresh(data.parent)
        warehouse = data.parent / "warehouse.duckdb"
        args = [creditrecon, "nightly", "--data", str(data), "--warehouse", str(warehouse)]
        started = time.perf_counter()
        subprocess.run([*args, "--as-of", AS_OF], env=env | extra, check=True, capture_output=True)
        return time.perf_counter() - started

    # The first temporary server creates its database: not what a night costs.
    night({})
    temporary = statistics.median(night({}) for _ in range(repeat))
    from flows.temporary_server import free_port

    port = free_port()
    prefect = str(Path(sys.executable).parent / "prefect")
    server = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = {"PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{api['PREFECT_API_URL']}/health", timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        night(api)
        running = statistics.median(night(api) for _ in range(repeat))
    finally:
        server.terminate()
        server.wait(timeout=30)
    fresh(data.parent)
    return {"temporary server": temporary, "running server": running}


def load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min)"


def report(
    results: list[Measured],
    tiny: Timed,
    command: dict[str, float],
    repeat: int,
    load_before: str,
) -> str:
    base = tiny.seconds
    lines = [
        f"\n## {dt.date.today()}: {machine()}\n",
        f"Machine load: {load_before} before the run, {load()} after; "
        f"{'median of ' + str(repeat) + ' rounds' if repeat > 1 else 'one round'}. "
        f"Start-up (full rebuild of a {TINY:,}-row folder): {base:.1f} s. "
        f"`creditrecon nightly` on that folder: {command['temporary server']:.1f} s with a "
        f"temporary Prefect server, {command['running server']:.1f} s against a running one.\n",
        "| files | export rows | floor | peer | full rebuild | full / peer | full / floor "
        "| work / peer | µs per row | night (+rows) | night / peer | peak memory "
        "floor / peer / full / night |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        work = max(r.full.seconds - base, 0.0)
        lines.append(
            f"| {r.shape} | {r.records:,} | {r.floor.seconds:.1f} s | {r.peer.seconds:.1f} s | "
            f"{r.full.seconds:.1f} s | {r.full.seconds / r.peer.seconds:.1f}x | "
            f"{r.full.seconds / r.floor.seconds:.1f}x | {work / r.peer.seconds:.1f}x | "
            f"{r.full.seconds / r.records * 1e6:.1f} | "
            f"{r.night.seconds:.1f} s (+{r.day_records:,}) | "
            f"{r.night.seconds / r.peer.seconds:.1f}x | "
            f"{r.floor.peak_mb:.0f} / {r.peer.peak_mb:.0f} / {r.full.peak_mb:.0f} / "
            f"{r.night.peak_mb:.0f} MiB |"
        )
    lines.append(
        "\n`work / peer`: the full rebuild less the start-up, against the peer. "
        "Where the time goes (seconds per step, slowest first):\n"
    )
    for r in results:
        lines.append(
            f"- {r.shape} {r.records:,} full rebuild ({r.full.how}): {by_time(r.full.steps)}"
        )
        lines.append(
            f"- {r.shape} {r.records:,} night ({r.night.how}): {by_time(r.night.steps, 8)}"
        )
    lines.append(f"- start-up, {TINY:,} rows: {by_time(tiny.steps, 6)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1_000_000])
    parser.add_argument(
        "--shapes", nargs="+", choices=["wide", "narrow"], default=["wide", "narrow"]
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds; each figure the median")
    parser.add_argument(
        "--results", type=Path, default=HERE / "results.md", help="file the table is appended to"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the generated data")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    load_before = load()
    tiny = start_up(args.out, args.repeat)
    command = command_start_up(args.out, max(args.repeat, 3))
    results = [
        measure(args.out, n, shape, args.repeat) for n in args.records for shape in args.shapes
    ]
    text = report(results, tiny, command, args.repeat, load_before)
    print(text)
    with open(args.results, "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
