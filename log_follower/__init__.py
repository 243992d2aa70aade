"""The one mechanism that follows the event log, for every process that does: the projector,
the saga (orchestrator or choreography participants) and the Kafka relay.

A layer of its own between the write model (whose event store port and envelope are all it
imports) and the packages that follow the log (read_model, sagas, messaging). Ports:

- `consumer.Consumer`: what a follower hands each batch to (`handle(batch)`, which returns
  the keys that failed with their failing event) and which errors are outages;
- `source.port.Source`: where batches come from and who may follow them (the event store's
  log with its leader lock and append signal; later a Kafka consumer group);
- `checkpoint.port.Checkpoint`: where a follower keeps its place (memory, SQLite,
  PostgreSQL, MongoDB beside the projector's documents, and the relay's Kafka transaction);
- `dead_letters.port.DeadLetters`: one store of parked events for every follower, in the
  event store's database;
- `status.port.StatusBoard`: every follower's last report (leader, position, heartbeat),
  which the `processes` query, /readyz and /metrics read.

`follower.Follower` is the loop: lead (hot standby otherwise), read gap-free batches, hand
them to the consumer, retry failed keys alone with backoff, park what keeps failing with
its key's later events, wait out outages, act on retry requests at a bounded cadence.
"""
