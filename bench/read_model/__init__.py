"""Read-model benchmark: projector rebuild rate and steady-state lag.

Runs on PostgreSQL databases and Mongo-wire databases of its own (created here, dropped at
the end, also on errors and SIGTERM), so the log holds only the bench's events. Needs
DATABASE_URL and MONGO_URL: run it as `make bench-read` (tests/services/with-services).

1. seeds --events realistic domain events (customers with their email reservations,
   products, orders created / 3 items / shipping address / submitted, half confirmed, a few
   customer and product renames in between) with concurrent appends, one per order stream;
2. rebuild rate into the memory store: a ProjectionRunner per projection, run_batch until
   idle, for the orders projection alone and for all three at once (one process);
3. rebuild rate into the Mongo-wire server: read_model.projector_process.rebuild_projection, which
   writes the fresh collection version batch by batch with guarded bulk writes;
4. steady-state lag under --lag-rate appended events/s for --lag-seconds, on a small log of
   its own (--lag-seed-events): for every append, its commit (when append_to_stream
   returns) -> the first change feed notice of its order document at that version or later.
   First with `python -m app projector` as a process on the Mongo-wire server (change feed:
   PostgreSQL NOTIFY), then with the projector in this process on the memory store (the
   projector's own overhead, apart from the server's); between the two (--no-breakdown: not)
   the projector in this process on the Mongo-wire server, its store calls timed.

    python -m bench.read_model [--events 100000] [--lag-seconds 10] [--skip-mongo] ...

Modules: `seeding` (the log), `services` (stores, projector process and in-process
projector), `rebuild` (2, 3), `paced` and `lag` (4), `timing` (store calls timed),
`__main__` (the command line); what the benchmarks share is in `bench.common`.
"""
