"""Where a follower of the log that writes no read documents (the saga) keeps its place:
a table in the event store's own database."""
