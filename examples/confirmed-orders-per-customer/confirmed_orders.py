"""Counts the confirmed orders of each customer from the Orders `order-events` topic into a
SQLite file, exactly once.

Every batch of records is applied in one SQLite transaction together with the offset to
read next on each partition, so the counts and the progress commit or vanish together.
Offsets are never committed to Kafka: when the group assigns a partition, reading resumes
at the offset stored in SQLite. Only records of committed Kafka transactions are read (the
Orders relay publishes in transactions). Kill it at any point and start it again: nothing
is lost and nothing is counted twice.

Settings (environment variables, with their defaults):

    KAFKA_BOOTSTRAP_SERVERS  localhost:9092            the brokers
    ORDER_EVENTS_TOPIC       order-events              <KAFKA_TOPIC_PREFIX>order-events
    CONSUMER_GROUP           confirmed-orders          the Kafka consumer group
    CONSUMER_INSTANCE_ID     the host name             a restarted consumer with the same
                                                       id gets its partitions back at once
    DATABASE_PATH            confirmed_orders.sqlite3  the counts and the offsets
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

log = logging.getLogger("confirmed_orders")

SCHEMA = """
CREATE TABLE IF NOT EXISTS order_customer (  -- from OrderCreated: OrderConfirmed has no data
    order_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS confirmed_orders (
    customer_id TEXT PRIMARY KEY,
    confirmed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kafka_offsets (  -- the next offset to read, per partition
    topic TEXT,
    partition INTEGER,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


def open_database(path: str) -> sqlite3.Connection:
    database = sqlite3.connect(path, isolation_level=None)  # we begin transactions ourselves
    database.execute("PRAGMA journal_mode=WAL")  # readers of the counts never block us
    database.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut too
    database.executescript(SCHEMA)
    return database


def stored_offset(database: sqlite3.Connection, topic: str, partition: int) -> int:
    row = database.execute(
        "SELECT next_offset FROM kafka_offsets WHERE topic = ? AND partition = ?",
        (topic, partition),
    ).fetchone()
    return OFFSET_BEGINNING if row is None else int(row[0])


def count(database: sqlite3.Connection, record: Message) -> None:
    """One record's effect. The key is the order's id; the event's type is in `ce_type`."""
    headers = dict(record.headers() or [])
    if "ce_type" not in headers:
        raise ValueError(
            f"record {record.topic()}[{record.partition()}]@{record.offset()} has no ce_type "
            "header: this consumer reads CloudEvents in binary mode (the relay's default)"
        )
    order_id = (record.key() or b"").decode()
    match headers["ce_type"]:
        case b"orders.OrderCreated":
            customer_id = json.loads(record.value() or b"")["customerId"]
            # One OrderCreated per order: a second one would fail here rather than count.
            database.execute("INSERT INTO order_customer VALUES (?, ?)", (order_id, customer_id))
        case b"orders.OrderConfirmed":
            row = database.execute(
                "SELECT customer_id FROM order_customer WHERE order_id = ?", (order_id,)
            ).fetchone()
            if row is None:
                raise LookupError(
                    f"order {order_id} was confirmed but its OrderCreated was never read: "
                    "start from the topic's beginning with a new database"
                )
            database.execute(
                "INSERT INTO confirmed_orders VALUES (?, 1) ON CONFLICT (customer_id) "
                "DO UPDATE SET confirmed = confirmed + 1",
                row,
            )
        case _:
            pass  # the order's other events do not change the count


def apply(database: sqlite3.Connection, records: list[Message]) -> None:
    """The records' effects and each partition's next offset, in one SQLite transaction."""
    database.execute("BEGIN IMMEDIATE")  # the write lock first, then the stored offsets
    try:
        next_offsets: dict[tuple[str, int], int] = {}
        for record in records:
            topic, partition, offset = record.topic(), record.partition(), record.offset()
            # Set on every record that is not an error (the types say "maybe None").
            assert topic is not None and partition is not None and offset is not None
            where = (topic, partition)
            if where not in next_offsets:
                next_offsets[where] = stored_offset(database, topic, partition)
            if offset < next_offsets[where]:
                # Applied already: by another instance that had this partition before a
                # rebalance and committed after we read its offset.
                continue
            count(database, record)
            next_offsets[where] = offset + 1
        database.executemany(
            "INSERT INTO kafka_offsets VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
            "DO UPDATE SET next_offset = excluded.next_offset",
            [(*where, offset) for where, offset in next_offsets.items()],
        )
    except BaseException:
        database.execute("ROLLBACK")
        raise
    database.execute("COMMIT")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    topic = os.environ.get("ORDER_EVENTS_TOPIC", "order-events")
    path = os.environ.get("DATABASE_PATH", "confirmed_orders.sqlite3")
    database = open_database(path)
    consumer = Consumer(
        {
            "bootstrap.servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
            "group.id": os.environ.get("CONSUMER_GROUP", "confirmed-orders"),
            # Static membership: the broker hands a restarted consumer its partitions at
            # once, instead of waiting for the dead one's session to time out.
            "group.instance.id": os.environ.get("CONSUMER_INSTANCE_ID", socket.gethostname()),
            "isolation.level": "read_committed",  # never records of aborted transactions
            "enable.auto.commit": False,  # the offsets live in SQLite, beside the counts
            "auto.offset.reset": "error",  # each partition starts where we say, or fails
            "topic.metadata.refresh.interval.ms": 5000,  # notice the topic once it exists
        }
    )

    def resume_at_stored_offsets(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for partition in partitions:
            partition.offset = stored_offset(database, partition.topic, partition.partition)
            where = "the beginning" if partition.offset == OFFSET_BEGINNING else partition.offset
            log.info("%s[%d] resumes at %s", partition.topic, partition.partition, where)
        consumer.assign(partitions)

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    consumer.subscribe([topic], on_assign=resume_at_stored_offsets)
    log.info("counting confirmed orders from %s into %s", topic, path)
    try:
        while not stopping:
            records = []
            for record in consumer.consume(500, timeout=1.0):
                error = record.error()
                if error is None:
                    records.append(record)
                elif error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    # The relay creates a topic with its first event: until then, wait.
                    log.warning("waiting for topic %s: %s", topic, error.str())
                else:
                    raise KafkaException(error)
            if records:
                apply(database, records)
    finally:
        consumer.close()
        database.close()
    log.info("stopped")


if __name__ == "__main__":
    main()
