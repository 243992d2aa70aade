"""`make bench`: every benchmark of bench/suites in one run, each in a process of its own,
then the table of every figure beside its peer or ceiling, bench/results.json, the plots and
the README sections between their markers.

    python -m bench [--only NAME,...] [--profile] [--out DIR]

BENCH_SCALE=smoke runs every benchmark briefly (for `make test`: it proves each still runs
and prints) and writes its results into a temporary directory (or --out), never over the
committed ones. --profile runs each benchmark under py-spy (its child processes too) and
keeps the flame graphs in bench/profiles/ (not in git).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, machine_description, say, server_description
from bench.figures import Scale, Suite
from bench.report import RESULTS, peers_digest, table, write_documents
from bench.suites import discover

PROFILES = ROOT / "bench" / "profiles"


def command(suite: Suite, result: Path, profile: bool) -> list[str]:
    one = [sys.executable, "-m", "bench.one", suite.name, str(result)]
    if not profile:
        return one
    PROFILES.mkdir(exist_ok=True)
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    svg = PROFILES / f"{suite.name}.svg"
    return [py_spy, "record", "--subprocesses", "--rate", "50", "-o", str(svg), "--", *one]


def run_suite(suite: Suite, scale: Scale, profile: bool, tmp: Path) -> dict[str, Any] | None:
    missing = [
        variable
        for service, variable in (
            ("postgres", "DATABASE_URL"),
            ("mongo", "MONGO_URL"),
            ("kafka", "ORDERS_TEST_KAFKA"),
        )
        if service in suite.needs and not os.environ.get(variable)
    ]
    if missing:
        raise SystemExit(
            f"{suite.name} needs {', '.join(missing)}: run under tests/services/with-services "
            "(`make bench`)"
        )
    say(f"== {suite.title} ({suite.name})")
    result = tmp / f"{suite.name}.json"
    started = time.monotonic()
    env = {**os.environ, "BENCH_SCALE": scale.name, "BENCH_PROFILE": "1" if profile else "0"}
    done = subprocess.run(command(suite, result, profile), cwd=ROOT, env=env, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0 or not result.exists():
        say(f"!! {suite.name} failed (exit {done.returncode}) after {seconds:.0f} s")
        return None
    say(f"   ({seconds:.0f} s)")
    return {
        "name": suite.name,
        "title": suite.title,
        "seconds": round(seconds, 1),
        **json.loads(result.read_text()),
    }


def describe_servers() -> str:
    dsn, mongo = os.environ.get("DATABASE_URL"), os.environ.get("MONGO_URL")
    if not dsn:
        return "no PostgreSQL"
    pg, mongo_server = asyncio.run(server_description(dsn, mongo))
    return f"{pg} (throwaway test cluster, fsync off); Mongo wire: {mongo_server}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--profile", action="store_true", help="run each under py-spy")
    parser.add_argument("--out", type=Path, help="where results.json and plots/ go")
    args = parser.parse_args()
    scale = Scale.from_environment()
    suites = discover()
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {s.name for s in suites}
        if unknown:
            raise SystemExit(f"no benchmark named {', '.join(sorted(unknown))}")
        suites = [s for s in suites if s.name in wanted]
    # The committed results are those of a whole full run, nothing less.
    committed = scale.name == "full" and not args.only and args.out is None
    out = args.out or (RESULTS.parent if committed else Path(tempfile.mkdtemp(prefix="bench-")))
    out.mkdir(parents=True, exist_ok=True)

    load_before = os.getloadavg()
    machine = machine_description()
    servers = describe_servers()
    say(f"make bench, scale {scale.name}: {machine}; {servers}")
    started = time.monotonic()
    gathered, failed = [], []
    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        for suite in suites:
            result = run_suite(suite, scale, args.profile, Path(tmp))
            if result is None:
                failed.append(suite.name)
            else:
                gathered.append(result)
    load_after = os.getloadavg()
    overrides = sorted(
        f"{name}={value}"
        for name, value in os.environ.items()
        if name.startswith("BENCH_") and name not in ("BENCH_SCALE", "BENCH_PROFILE")
    )
    overridden = (
        f" Sizes changed from the full scale's: {', '.join(overrides)}." if overrides else ""
    )
    results = {
        "run": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "scale": scale.name,
            "seconds": round(time.monotonic() - started),
            "machine": machine,
            "servers": servers,
            "note": (
                f"Load average {load_before[0]:.1f} at the start and {load_after[0]:.1f} at the "
                "end (the benchmark's own servers and clients count in it); figures move by up "
                "to +-30 % between runs on these two cores, most when other work shares them; "
                "the ratios, measured minutes apart in the same run, move less." + overridden
            ),
            "overrides": overrides,
            "peers_sha256": peers_digest(),
        },
        "suites": gathered,
    }
    say()
    say(table(results))
    if failed:
        raise SystemExit(f"benchmarks failed: {', '.join(failed)} (nothing written)")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    from bench.plots import write_plots  # matplotlib only once there is something to plot

    plots = write_plots(results, out / "plots")
    if committed:
        write_documents(results)
        say(f"wrote {RESULTS.relative_to(ROOT)}, {len(plots)} plots, README.md, bench/README.md")
    else:
        say(f"wrote {out / 'results.json'} and {len(plots)} plots in {out / 'plots'}")
    if args.profile:
        say(f"flame graphs in {PROFILES.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
