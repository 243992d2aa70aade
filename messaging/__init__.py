"""Kafka messaging: the relay that publishes the event log to Kafka as CloudEvents, exactly
once, and the JSON Schemas of the events it publishes."""
