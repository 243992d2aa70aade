"""The relay's transactional producer: confluent-kafka's `Producer` on a worker thread.

librdkafka's transactional calls block (init, commit, abort, flush), and the asyncio producer
cannot send headers: every call runs on one thread of our own, in order, so the event loop
never waits on the broker. Errors are sorted the way librdkafka asks:

- fatal (`_FENCED`: another relay with our transactional.id took over; an idempotence
  invariant broken): `KafkaFatal`; the process ends (status 2) and a supervisor restarts it;
- abortable: the records sent are flushed (so none is left unsent locally, which would make
  the abort prove nothing), the transaction aborted, and `TransactionAborted` raised: the
  caller sends the batch again in a new transaction;
- retriable (the broker away, a timeout): `KafkaUnavailable` (an outage), and the
  transaction's outcome is in doubt until `resolve()` commits or aborts it, which the caller
  does before anything else.

QUEUE_FULL while producing is backpressure: the thread serves delivery reports until there
is room.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer

from messaging import failpoints
from messaging.cloudevents import KafkaRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


class KafkaUnavailable(ConnectionError):
    """The broker could not be reached or did not answer in time: an outage, waited out."""


class TransactionAborted(ConnectionError):
    """The broker refused the transaction in a way that allows another try: it was aborted,
    nothing of it is visible to read_committed consumers; send it again."""


class KafkaFatal(Exception):
    """The producer cannot go on (fenced by a newer relay with its transactional.id, or an
    invariant broken): the process must end."""


class _Doubt(enum.Enum):
    NONE = "none"
    COMMIT = "commit"  # commit_transaction failed retriably: call it again
    ABORT = "abort"  # abort_transaction failed retriably: call it again


# What a process does with a fatal error: the relay's ends the process (messaging/relay.py).
OnFatal = Callable[[KafkaFatal], NoReturn]


class TransactionalProducer:
    """`on_fatal`: called with any fatal error, whichever call met it (a batch's send, the
    follower's checkpoint save, init_transactions), instead of raising it."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        timeout_seconds: float = 30.0,
        on_fatal: OnFatal | None = None,
    ) -> None:
        self._config = config
        self._timeout = timeout_seconds
        self._on_fatal = on_fatal
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="kafka-producer")
        self._producer: Producer | None = None
        self._initialised = False  # init_transactions succeeded on `_producer`
        self._doubt = _Doubt.NONE

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)
        except KafkaFatal as error:
            if self._on_fatal is None:
                raise
            self._on_fatal(error)

    @property
    def in_doubt(self) -> bool:
        return self._doubt is not _Doubt.NONE

    async def start(self) -> None:
        """init_transactions: fences any earlier producer with our transactional.id and
        completes or aborts its last transaction, so read_committed readers see its end.
        Called each time the process takes the lead: after the first, a new librdkafka
        producer does it (see `_start`)."""
        await self._run(self._start)

    async def send(self, records: Iterable[KafkaRecord]) -> None:
        """One transaction holding `records`, committed when this returns."""
        await self._run(self._send, list(records))

    async def resolve(self) -> bool:
        """Finish a transaction whose outcome was in doubt: True when it committed."""
        return await self._run(self._resolve)

    async def close(self) -> None:
        await self._run(self._close)
        self._thread.shutdown(wait=True)

    # ------------------------------------------------------------- on the worker thread

    def _start(self) -> None:
        if self._initialised:
            # Leading again in this process: librdkafka initialises transactions once per
            # producer ("Operation not valid in state Ready" after that), so a new one takes
            # over, and its init_transactions fences the last one as it fences any other
            # relay's, ending its open transaction (a commit in doubt is completed or aborted
            # by the coordinator; the checkpoint, read next, says which). Purged first: the
            # old producer's records must not wait in its queue while it is destroyed here.
            retired, self._producer = self._producer_(), None
            self._initialised = False
            self._doubt = _Doubt.NONE
            retired.purge()
            del retired
        if self._producer is None:
            self._producer = Producer({**self._config, "error_cb": self._on_error})
        # A first init that failed (the broker away) is resumed on the same producer.
        self._guard(lambda: self._producer_().init_transactions(self._timeout))
        self._initialised = True

    def _producer_(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("the producer is not started")
        return self._producer

    def _on_error(self, error: KafkaError) -> None:
        # Client-level errors (a broker down, all brokers down) come here; a fatal one also
        # fails the next transactional call, where it is acted on.
        log.warning("kafka: %s", error.str())

    def _send(self, records: list[KafkaRecord]) -> None:
        producer = self._producer_()
        if self.in_doubt:
            raise RuntimeError("resolve() the transaction in doubt first")
        self._guard(producer.begin_transaction)
        for record in records:
            self._produce(producer, record)
        failpoints.reach("after-send")
        self._commit(producer)
        failpoints.reach("after-commit")

    def _produce(self, producer: Producer, record: KafkaRecord) -> None:
        # No delivery callback: a record that fails fails the transaction's commit, which
        # is where it is acted on (a callback per record would cost a Python call each).
        while True:
            try:
                producer.produce(
                    record.topic, value=record.value, key=record.key, headers=list(record.headers)
                )
                return
            except BufferError:  # QUEUE_FULL: wait for room, never crash
                producer.poll(0.1)
            except KafkaException as error:
                self._failed(producer, error.args[0], committing=False)

    def _commit(self, producer: Producer) -> None:
        try:
            producer.commit_transaction(self._timeout)
        except KafkaException as error:
            self._failed(producer, error.args[0], committing=True)

    def _failed(self, producer: Producer, error: KafkaError, *, committing: bool) -> None:
        """Act on an error of a transaction in progress; always raises."""
        if error.fatal():
            raise KafkaFatal(error.str())
        if error.txn_requires_abort():
            self._abort(producer)
            raise TransactionAborted(error.str())
        if committing and error.retriable():
            self._doubt = _Doubt.COMMIT
            raise KafkaUnavailable(f"commit in doubt: {error.str()}")
        # Anything else mid-transaction: abort it and let the caller send again.
        self._abort(producer)
        raise TransactionAborted(error.str())

    def _abort(self, producer: Producer) -> None:
        # Flush first: records still queued locally would be dropped by the abort, and the
        # abort would not prove that the broker threw them away.
        producer.flush(self._timeout)
        try:
            producer.abort_transaction(self._timeout)
            self._doubt = _Doubt.NONE
        except KafkaException as error:
            if error.args[0].fatal():
                raise KafkaFatal(error.args[0].str()) from None
            self._doubt = _Doubt.ABORT
            raise KafkaUnavailable(f"abort in doubt: {error.args[0].str()}") from None

    def _resolve(self) -> bool:
        producer = self._producer_()
        match self._doubt:
            case _Doubt.NONE:
                return False
            case _Doubt.COMMIT:
                self._commit(producer)
                self._doubt = _Doubt.NONE
                return True
            case _Doubt.ABORT:
                self._abort(producer)
                return False

    def _guard(self, call: Callable[[], object]) -> None:
        """A transactional call outside commit: fatal -> KafkaFatal, else KafkaUnavailable."""
        try:
            call()
        except KafkaException as error:
            kafka_error: KafkaError = error.args[0]
            if kafka_error.fatal():
                raise KafkaFatal(kafka_error.str()) from None
            if kafka_error.txn_requires_abort():
                self._abort(self._producer_())
                raise TransactionAborted(kafka_error.str()) from None
            raise KafkaUnavailable(kafka_error.str()) from None

    def _close(self) -> None:
        if self._producer is not None:
            self._producer.flush(min(self._timeout, 5.0))
