"""Read-model benchmark: projector rebuild rate and steady-state lag.

    python -m bench.read_model [--events 100000] [--lag-seconds 10] [--skip-mongo] ...

What it measures and how: see the package's docstring (bench/read_model/__init__.py).
"""

from __future__ import annotations

import argparse
import gc
import os
import uuid

from bench.common import machine_description, run_main, say, server_description
from bench.read_model.lag import lag_benchmark
from bench.read_model.rebuild import rebuild_benchmark


async def run(args: argparse.Namespace) -> None:
    admin_dsn = os.environ["DATABASE_URL"]
    mongo_url = os.environ.get("MONGO_URL")
    if not mongo_url and not args.skip_mongo:
        raise SystemExit("MONGO_URL is not set: run `make bench-read` or pass --skip-mongo")
    pg, mongo = await server_description(admin_dsn, mongo_url)
    say(f"read model bench: {machine_description()}; {pg}; Mongo-wire: {mongo}")
    tag = uuid.uuid4().hex[:8]
    figures: list[str] = []

    if not args.skip_rebuild:
        await rebuild_benchmark(admin_dsn, mongo_url, tag, args, figures)
        gc.collect()  # the seeded events and rebuilt stores go before the lag runs

    if not args.skip_lag:
        await lag_benchmark(admin_dsn, mongo_url, tag, args, figures)

    say("figures:")
    for line in figures:
        say(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.read_model", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--events", type=int, default=100_000, help="events in the rebuild log")
    parser.add_argument("--batch-size", type=int, default=1000, help="rebuild batch size")
    parser.add_argument("--seed-concurrency", type=int, default=16)
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument("--lag-rate", type=float, default=1000.0, help="appended events/s")
    parser.add_argument("--lag-seed-events", type=int, default=2000)
    parser.add_argument(
        "--projector-batch-size", type=int, default=500, help="PROJECTOR_BATCH_SIZE for lag"
    )
    parser.add_argument(
        "--drain-seconds", type=float, default=20.0, help="wait for catch-up after a lag run"
    )
    parser.add_argument(
        "--breakdown",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the projector in-process on the Mongo-wire server, its calls timed",
    )
    parser.add_argument("--skip-mongo", action="store_true", help="memory store only")
    parser.add_argument("--skip-rebuild", action="store_true")
    parser.add_argument("--skip-lag", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("DATABASE_URL is not set: run `make bench-read`")
    run_main(lambda: run(args))


if __name__ == "__main__":
    main()
