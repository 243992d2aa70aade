"""One benchmark of `make bench` in a process of its own (so that each starts from a clean
heap and can run under py-spy):

    python -m bench.one NAME RESULT.json

The figures it reports are saved to RESULT.json for `python -m bench` to gather."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from bench.common import run_main
from bench.figures import SUITES, Run, Scale
from bench.suites import discover


def main() -> None:
    name, result = sys.argv[1], Path(sys.argv[2])
    discover()
    if name not in SUITES:
        raise SystemExit(f"no benchmark named {name!r}: {', '.join(sorted(SUITES))}")
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as workdir:
        run = Run(Scale.from_environment(), Path(workdir), os.environ.get("BENCH_PROFILE") == "1")
        run_main(lambda: SUITES[name].run(run))
        run.save(result)


if __name__ == "__main__":
    main()
