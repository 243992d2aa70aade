"""Payment and shipping gateway ports, the simulated adapters, and the resilience around
every call (timeout, retries with backoff and jitter, a circuit breaker per gateway)."""
