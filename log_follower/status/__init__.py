"""Every follower's status: what the `processes` query, /readyz and /metrics show. Port in
`port.py`; adapters `memory.py`, `sqlite.py`, `postgres.py` in the event store's database."""
