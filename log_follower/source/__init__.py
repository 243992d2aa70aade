"""Where a follower's batches come from and who may follow them. Port in `port.py`;
`log.py`: the event store's log (PostgreSQL, or the SQLite file of `orders dev`) with its
leader lock and append signal; `shared.py`: one reader per process in front of it. The
Kafka consumer-group source (messaging/) is another adapter."""
