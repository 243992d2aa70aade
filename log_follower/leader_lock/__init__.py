"""Leadership: one active runner per projection (or saga) across processes; the others wait
as hot standbys. Port in `port.py`; adapters `in_process.py` and `postgres.py`."""
