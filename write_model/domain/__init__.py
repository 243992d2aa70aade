"""Pure domain logic: deciders over frozen dataclasses. No I/O; time, ids and prices come in."""
