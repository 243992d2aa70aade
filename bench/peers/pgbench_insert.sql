-- Ceiling of the write model: one event-like row inserted per transaction, no read, no
-- check (pgbench -n -M prepared -f bench/peers/pgbench_insert.sql, same cluster and client
-- counts as the write model). The table is created by bench/peers/pgbench.py.
\set n random(1, 1000000000)
INSERT INTO pgbench_events (stream_id, type, data) VALUES ('Order-' || :n, 'OrderItemAdded', '{"productId": "p", "quantity": 1}');
