"""The fulfillment saga by choreography (SAGA_MODE=choreography): participant.py."""
