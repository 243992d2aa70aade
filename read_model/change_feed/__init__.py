"""The change feed: the projector publishes which documents it wrote; API processes listen.
Port in `port.py`; adapters `in_process.py` (one process) and `postgres.py` (NOTIFY)."""
