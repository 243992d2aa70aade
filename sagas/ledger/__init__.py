"""The gateways' durable ledger: one entry per idempotency key, the first outcome kept."""
