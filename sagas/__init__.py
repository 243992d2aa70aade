"""The fulfillment saga's process side: gateways, their ledger, the orchestrator."""
