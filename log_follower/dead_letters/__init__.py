"""One store of parked events for every follower, in the event store's database. Port in
`port.py`; adapters `memory.py`, `sqlite.py` (`orders dev`), `postgres.py`; every one passes
tests/contracts/test_dead_letters.py."""
