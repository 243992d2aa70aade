"""Where a follower of the log that writes no read documents (the saga) parks what it
cannot handle: a table beside its checkpoints, in the event store's own database."""
