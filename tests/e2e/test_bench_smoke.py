"""`make bench` still runs: every benchmark at BENCH_SCALE=smoke (a moment each, against the
services of the test run), printing its figures beside their peers and writing its results
and plots. Nothing here is about speed: the figures of a smoke run mean nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.report import table
from bench.suites import discover
from tests.conftest import service_url

ROOT = Path(__file__).resolve().parents[2]


def test_every_benchmark_runs_and_prints_its_figures_beside_their_peers(tmp_path):
    env = {
        **os.environ,
        "BENCH_SCALE": "smoke",
        "DATABASE_URL": service_url("DATABASE_URL"),
        "MONGO_URL": service_url("MONGO_URL"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    results = json.loads((tmp_path / "results.json").read_text())
    suites = {s.name for s in discover()}
    assert {s["name"] for s in results["suites"]} == suites
    for reported in results["suites"]:
        assert reported["figures"], f"{reported['name']} reported no figure"
    # The table the run printed is the one its results give, and every bound names a peer
    # figure of the same run, with a ratio.
    assert table(results) in done.stdout
    figures = {f["id"]: f for s in results["suites"] for f in s["figures"]}
    bounds = [b for s in results["suites"] for b in s["bounds"]]
    assert bounds
    for bound in bounds:
        assert figures[bound["against"]]["peer"], bound
        assert not figures[bound["figure"]]["peer"], bound
    curves = [c["id"] for s in results["suites"] for c in s["curves"]]
    assert sorted(p.stem for p in (tmp_path / "plots").glob("*.png")) == sorted(curves)
    # A smoke run never rewrites the committed results.
    assert str(tmp_path / "results.json") in done.stdout
