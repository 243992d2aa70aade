"""HTTP benchmark: the GraphQL API as deployed, one uvicorn worker of `orders api` beside
`orders projector`, on PostgreSQL and the Mongo-wire server.

Two measurements, each about `--seconds` long after a short warm-up:

1. `order(id)` with its items (and each item's live product) and its customer, over many
   seeded orders, at `--query-connections` connections (target >= 1,500 req/s);
2. `addOrderItem` mutations at `--mutation-connections` connections (target >= 1,000
   mutations/s): each adds one of the seeded products to one of many seeded draft orders,
   round robin, without `expectedVersion` (the server retries a rare conflict itself).

The load generator is `wrk` (Debian's package) with a Lua script for the POST bodies when
it is installed, else an async Python client (aiohttp) with as many connections. Prints
requests/s and latency p50/p99 for each. Run it under the test services:

    tests/services/with-services .venv/bin/python -m bench.http [--seconds 10]

It creates a PostgreSQL database and a Mongo database of its own and drops them at the end.

Modules: `stack` (the server processes on their databases), `seeding` (customers, products
and orders through the API), `drivers` (wrk and the Python client), `__main__` (the
command line and the two measurements).
"""
