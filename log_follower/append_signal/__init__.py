"""The append signal: a follower of the log (a projection, the saga) sleeps until something
was appended or a poll interval passes, so a quiet log costs no busy loop. Port in
`port.py`; adapters `in_process.py` and `postgres.py` (LISTEN)."""
