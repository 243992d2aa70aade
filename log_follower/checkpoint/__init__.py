"""Where a follower keeps its place in the log. Port in `port.py`; adapters `memory.py`,
`sqlite.py`, `postgres.py` here, the projector's beside its documents
(read_model/projection_checkpoint.py) and the relay's in its Kafka transaction; every one
passes tests/contracts/test_checkpoint.py."""
