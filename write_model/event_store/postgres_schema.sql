-- Event store schema. Idempotent: `orders migrate` runs it every time.

CREATE TABLE IF NOT EXISTS streams (
    stream_id text PRIMARY KEY,
    type      text NOT NULL,
    version   integer NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Readers of the global log stop below the oldest running transaction, so an event that
    -- commits late with a low position is never skipped (see read_all).
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      text NOT NULL,
    version        integer NOT NULL,
    event_id       uuid NOT NULL,
    type           text NOT NULL,
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL,
    occurred_at    timestamptz NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

CREATE INDEX IF NOT EXISTS events_log_order ON events (transaction_id, position);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key            text NOT NULL,
    -- The mutation and the principal the key was sent with: one client's key never
    -- collides with another mutation's or (once there is authentication) another client's.
    -- '' on records stored before keys were scoped.
    scope          text NOT NULL DEFAULT '',
    principal      text NOT NULL DEFAULT '',
    fingerprint    text NOT NULL,
    stream_id      text NOT NULL,
    version        integer NOT NULL,
    transaction_id xid8 NOT NULL,
    position       bigint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_scoped_key PRIMARY KEY (principal, scope, key)
);

-- Migration of a store from before keys were scoped (`key` its primary key): its records
-- keep their meaning as unscoped ('', '') records, which lookups fall back to.
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS scope text NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS principal text NOT NULL DEFAULT '';
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'idempotency_keys_pkey' AND conrelid = 'idempotency_keys'::regclass
    ) THEN
        ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
        ALTER TABLE idempotency_keys
            ADD CONSTRAINT idempotency_keys_scoped_key PRIMARY KEY (principal, scope, key);
    END IF;
END;
$$;
DROP FUNCTION IF EXISTS append_to_stream(
    text, text, integer, uuid[], text[], jsonb[], jsonb[], timestamptz[], text, text
);

-- One round trip per append. p_expected: -1 any, 0 no stream, n >= 1 exactly n.
-- Returns ok = false with the actual version on a conflict, having written nothing.
-- The row lock on `streams` serializes appends to one stream only, never the whole log.
CREATE OR REPLACE FUNCTION append_to_stream(
    p_stream_id text,
    p_stream_type text,
    p_expected integer,
    p_event_ids uuid[],
    p_types text[],
    p_data jsonb[],
    p_metadata jsonb[],
    p_occurred_at timestamptz[],
    p_idempotency_key text,
    p_idempotency_scope text,
    p_idempotency_principal text,
    p_fingerprint text
) RETURNS TABLE (ok boolean, stream_version integer, transaction_id xid8, log_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_event_ids, 1), 0);
    v_version integer;
    v_tx xid8;
    v_position bigint;
BEGIN
    IF n = 0 THEN
        SELECT s.version INTO v_version FROM streams s WHERE s.stream_id = p_stream_id;
        v_version := coalesce(v_version, 0);
        IF (p_expected = 0 AND v_version <> 0) OR (p_expected > 0 AND v_version <> p_expected) THEN
            RETURN QUERY SELECT false, v_version, NULL::xid8, NULL::bigint;
            RETURN;
        END IF;
        -- Nothing to write: the token names the stream's last event.
        SELECT e.transaction_id, e.position INTO v_tx, v_position
        FROM events e WHERE e.stream_id = p_stream_id ORDER BY e.version DESC LIMIT 1;
        v_tx := coalesce(v_tx, '0'::xid8);
        v_position := coalesce(v_position, 0);
    ELSE
        IF p_expected = -1 THEN
            INSERT INTO streams AS s (stream_id, type, version)
            VALUES (p_stream_id, p_stream_type, n)
            ON CONFLICT (stream_id) DO UPDATE SET version = s.version + n
            RETURNING s.version INTO v_version;
        ELSIF p_expected = 0 THEN
            INSERT INTO streams (stream_id, type, version)
            VALUES (p_stream_id, p_stream_type, n)
            ON CONFLICT (stream_id) DO NOTHING
            RETURNING streams.version INTO v_version;
        ELSE
            UPDATE streams s SET version = s.version + n
            WHERE s.stream_id = p_stream_id AND s.version = p_expected
            RETURNING s.version INTO v_version;
        END IF;

        IF v_version IS NULL THEN
            SELECT s.version INTO v_version FROM streams s WHERE s.stream_id = p_stream_id;
            RETURN QUERY SELECT false, coalesce(v_version, 0), NULL::xid8, NULL::bigint;
            RETURN;
        END IF;

        WITH inserted AS (
            INSERT INTO events (stream_id, version, event_id, type, data, metadata, occurred_at)
            SELECT p_stream_id, v_version - n + e.ord::integer, e.event_id, e.type, e.data,
                   e.metadata, e.occurred_at
            FROM unnest(p_event_ids, p_types, p_data, p_metadata, p_occurred_at)
                 WITH ORDINALITY AS e(event_id, type, data, metadata, occurred_at, ord)
            RETURNING events.position
        )
        SELECT max(inserted.position) INTO v_position FROM inserted;
        v_tx := pg_current_xact_id();
    END IF;

    IF p_idempotency_key IS NOT NULL THEN
        INSERT INTO idempotency_keys
            (key, scope, principal, fingerprint, stream_id, version, transaction_id, position)
        VALUES (p_idempotency_key, p_idempotency_scope, p_idempotency_principal, p_fingerprint,
                p_stream_id, v_version, v_tx, v_position);
    END IF;

    RETURN QUERY SELECT true, v_version, v_tx, v_position;
END;
$$;
