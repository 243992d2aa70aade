"""Simulated gateways and the resilience around them, on the in-memory ledger (no I/O):
rules, first outcome per key, voids, timeouts, retries and the circuit breaker."""

from __future__ import annotations

from decimal import Decimal

from sagas.gateways.port import GatewayOutcome, TransientGatewayError
from sagas.gateways.resilience import CallPolicy, CircuitBreaker, Resilient
from sagas.gateways.simulated import (
    Behaviour,
    PaymentRules,
    ShippingRules,
    SimulatedPayments,
    SimulatedShipping,
)
from sagas.ledger.memory import InMemoryLedger
from write_model.domain.money import Money
from write_model.domain.order import Address

USD_50 = Money(Decimal("50.00"), "USD")
ADDRESS = Address("1 Main St", "Springfield", "12345", "US")
FAST = CallPolicy(timeout_seconds=0.05, max_attempts=3, backoff_seconds=0.001)


async def test_a_repeated_charge_returns_the_first_outcome_and_charges_once() -> None:
    ledger = InMemoryLedger()
    payments = SimulatedPayments(ledger, PaymentRules())

    first = await payments.charge("k1", "c1", USD_50)
    again = await payments.charge("k1", "c1", USD_50)

    assert first.succeeded and first.reference and first == again
    assert payments.calls == 1
    assert [(e.operation, e.amount) for e in await ledger.entries("payment")] == [
        ("charge", Decimal("50.00"))
    ]


async def test_payments_are_declined_above_the_limit_or_for_listed_customers() -> None:
    rules = PaymentRules(decline_above=Decimal("49.99"), decline_customers=frozenset({"bad"}))
    payments = SimulatedPayments(InMemoryLedger(), rules)

    above = await payments.charge("k1", "c1", USD_50)
    listed = await payments.charge("k2", "bad", Money(Decimal("1.00"), "USD"))
    fine = await payments.charge("k3", "c1", Money(Decimal("49.99"), "USD"))

    assert above == GatewayOutcome.refused("payment declined: 50.00 USD is above 49.99")
    assert listed == GatewayOutcome.refused("payment declined for customer bad")
    assert fine.succeeded


async def test_a_refund_undoes_the_charge_once() -> None:
    ledger = InMemoryLedger()
    payments = SimulatedPayments(ledger, PaymentRules())
    await payments.charge("charge", "c1", USD_50)

    refund = await payments.refund("refund", "charge")
    assert refund.succeeded and refund.reference
    assert await payments.refund("refund", "charge") == refund

    entries = await ledger.entries("payment")
    assert [(e.operation, e.subject, e.amount) for e in entries] == [
        ("charge", "c1", Decimal("50.00")),
        ("refund", "c1", Decimal("50.00")),
    ]


async def test_a_refund_before_any_charge_voids_the_charge_key() -> None:
    ledger = InMemoryLedger()
    payments = SimulatedPayments(ledger, PaymentRules())

    refund = await payments.refund("refund", "charge")
    late = await payments.charge("charge", "c1", USD_50)

    assert refund == GatewayOutcome.done(None)
    assert late == GatewayOutcome.refused("cancelled")
    assert not any(e.succeeded and e.operation == "charge" for e in await ledger.entries("payment"))


async def test_shipments_to_listed_countries_fail_and_a_cancel_undoes_a_shipment() -> None:
    ledger = InMemoryLedger()
    shipping = SimulatedShipping(ledger, ShippingRules(fail_countries=frozenset({"XX"})))

    refused = await shipping.create("s1", "o1", Address("1 Road", "Town", "1", "XX"))
    created = await shipping.create("s2", "o2", ADDRESS)
    cancelled = await shipping.cancel("c2", "s2")

    assert refused == GatewayOutcome.refused("no shipping to XX")
    assert created.succeeded and cancelled.succeeded
    assert [(e.operation, e.subject) for e in await ledger.entries("shipping")] == [
        ("create", "o1"),
        ("create", "o2"),
        ("cancel", "o2"),
    ]


async def test_a_hanging_gateway_times_out_after_every_attempt() -> None:
    payments = SimulatedPayments(InMemoryLedger(), PaymentRules(), Behaviour(hang=True))
    resilient = Resilient("payment", FAST)

    outcome = await resilient.call(lambda: payments.charge("k", "c1", USD_50))

    assert outcome == GatewayOutcome.out_of_reach(
        "payment gateway failed after 3 attempts: timed out after 0.05 s"
    )
    assert payments.calls == 3


async def test_a_transient_failure_is_retried_and_then_succeeds() -> None:
    # Seed 1 fails the first call at a rate of 0.5 and passes the second.
    payments = SimulatedPayments(
        InMemoryLedger(), PaymentRules(), Behaviour(failure_rate=0.5, seed=1)
    )

    outcome = await Resilient("payment", FAST).call(lambda: payments.charge("k", "c1", USD_50))

    assert outcome.succeeded
    assert payments.calls == 2


async def test_a_refusal_is_an_answer_and_never_retried() -> None:
    payments = SimulatedPayments(InMemoryLedger(), PaymentRules(decline_above=Decimal("1")))
    resilient = Resilient("payment", FAST)

    outcome = await resilient.call(lambda: payments.charge("k", "c1", USD_50))

    assert not outcome.succeeded and not outcome.unavailable
    assert payments.calls == 1 and not resilient.breaker.open


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_breaker_opens_after_repeated_failures_and_closes_after_the_cool_down() -> None:
    clock = Clock()
    resilient = Resilient(
        "shipping",
        FAST,
        CircuitBreaker("shipping", failures_to_open=2, cooldown_seconds=10, clock=clock),
    )
    calls = 0
    healthy = False

    async def provider() -> GatewayOutcome:
        nonlocal calls
        calls += 1
        if not healthy:
            raise TransientGatewayError("503")
        return GatewayOutcome.done("ship-1")

    for _ in range(2):
        assert (await resilient.call(provider)).unavailable
    assert calls == 6 and resilient.breaker.open

    fast = await resilient.call(provider)
    assert fast == GatewayOutcome.out_of_reach(
        "shipping gateway unavailable: circuit open after repeated failures"
    )
    assert calls == 6  # failed fast: the provider was not asked

    healthy = True
    clock.now = 10.0
    assert await resilient.call(provider) == GatewayOutcome.done("ship-1")
    assert not resilient.breaker.open


async def test_a_failed_trial_after_the_cool_down_opens_the_breaker_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker("payment", failures_to_open=1, cooldown_seconds=5, clock=clock)
    breaker.failed()
    clock.now = 5.0
    assert breaker.allows()

    breaker.failed()

    assert breaker.open and not breaker.allows()
