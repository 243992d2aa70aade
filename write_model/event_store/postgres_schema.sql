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

-- One snapshot per stream, the newest (see write_model/snapshots.py).
CREATE TABLE IF NOT EXISTS snapshots (
    stream_id      text PRIMARY KEY,
    version        integer NOT NULL,
    schema_version integer NOT NULL,
    data           jsonb NOT NULL
);

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

-- An append whose event ids are stored already: 'new' when none is, 'repeat' (with the
-- first append's result) when they are exactly the events of one earlier append to this
-- stream in this order, else 'duplicate'. See the EventStore port. Asked only after an
-- append failed on a stored id or a version conflict, so appends pay nothing for it.
CREATE OR REPLACE FUNCTION repeated_append(p_stream_id text, p_event_ids uuid[])
RETURNS TABLE (outcome text, stream_version integer, transaction_id xid8, log_position bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    n integer := coalesce(array_length(p_event_ids, 1), 0);
    v_found integer;
    v_same_stream boolean;
    v_first integer;
    v_last integer;
    v_transactions integer;
    v_tx xid8;
    v_position bigint;
BEGIN
    SELECT count(*)::integer, bool_and(e.stream_id = p_stream_id), min(e.version),
           max(e.version), count(DISTINCT e.transaction_id)::integer,
           (array_agg(e.transaction_id))[1], max(e.position)
    INTO v_found, v_same_stream, v_first, v_last, v_transactions, v_tx, v_position
    FROM events e WHERE e.event_id = ANY(p_event_ids);
    IF v_found = 0 THEN
        RETURN QUERY SELECT 'new'::text, NULL::integer, NULL::xid8, NULL::bigint;
        RETURN;
    END IF;
    -- All of them, on this stream, in one transaction, in the order given, and nothing
    -- else of that transaction on the stream right before or after.
    IF v_found = n AND v_same_stream AND v_transactions = 1 AND v_last - v_first + 1 = n
       AND NOT EXISTS (
           SELECT 1 FROM unnest(p_event_ids) WITH ORDINALITY AS g(event_id, ord)
           JOIN events e ON e.event_id = g.event_id
           WHERE e.version <> v_first + g.ord::integer - 1
       )
       AND NOT EXISTS (
           SELECT 1 FROM events e WHERE e.stream_id = p_stream_id
           AND e.version IN (v_first - 1, v_last + 1) AND e.transaction_id = v_tx
       ) THEN
        RETURN QUERY SELECT 'repeat'::text, v_last, v_tx, v_position;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'duplicate'::text, NULL::integer, NULL::xid8, NULL::bigint;
END;
$$;

-- Each wanted stream's usable snapshot (of the schema version asked for; NULL: none) and
-- the events after it, one row per event (one with no event when none follows); the
-- snapshot's data only on its stream's first row. A loop of one-stream queries: PostgreSQL
-- keeps their plan, where a query over the whole array is planned again at every call.
CREATE OR REPLACE FUNCTION read_from_snapshots(p_stream_ids text[], p_schema_versions integer[])
RETURNS TABLE (wanted text, snapshot_version integer, snapshot_schema_version integer,
               snapshot_data jsonb, "position" bigint, transaction_id xid8, stream_id text,
               version integer, event_id uuid, type text, data jsonb, metadata jsonb,
               occurred_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_stream_ids, 1), 0) LOOP
        RETURN QUERY
        SELECT w.stream_id, s.version, s.schema_version,
               CASE WHEN e.version IS NULL OR e.version = s.version + 1 THEN s.data END,
               e.position, e.transaction_id, e.stream_id, e.version, e.event_id, e.type,
               e.data, e.metadata, e.occurred_at
        FROM (VALUES (p_stream_ids[i], p_schema_versions[i])) AS w(stream_id, schema_version)
        LEFT JOIN snapshots s
            ON s.stream_id = w.stream_id AND s.schema_version = w.schema_version
        LEFT JOIN LATERAL (
            SELECT * FROM events x
            WHERE x.stream_id = w.stream_id AND x.version > coalesce(s.version, 0)
        ) e ON true
        ORDER BY e.version;
    END LOOP;
END;
$$;

-- One round trip per append to one stream: p_event_ids and their columns for p_stream_id
-- at p_expected (-1 any, 0 no stream, n >= 1 exactly n). A conflict returns ok = false
-- with the stream's version, having written nothing. The row lock on `streams` serializes
-- appends to the same stream only, never the log. The idempotency key, if any, is stored
-- with the append's result. Nearly every append is to one stream: this is its whole cost.
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
        -- Appends to a stream take turns here, before their first write gives them a
        -- transaction id (an advisory lock needs none): so a later version of a stream
        -- always gets a later transaction id, and the log, ordered by transaction id,
        -- holds every stream's events in version order. (The row lock below comes after
        -- the id: two appends could take ids in one order and the row in the other.)
        PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, 0));
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

-- One round trip for an append to several streams, all or nothing: append_to_stream for
-- each part. Part i is p_counts[i] events (the next ones of the flat event arrays) for
-- p_stream_ids[i] at p_expected[i]. The caller sorts the parts by stream id, so two appends
-- lock the streams they share in the same order (no deadlock). A conflict on the first part
-- returns its row with ok = false, having written nothing; on a later part (earlier ones
-- are written) it raises SQLSTATE EV409 with the stream id as DETAIL and its version as
-- HINT, which undoes the whole statement. The idempotency key, if any, is stored with the
-- result of part p_idempotency_stream.
CREATE OR REPLACE FUNCTION append_to_streams(
    p_stream_ids text[],
    p_stream_types text[],
    p_expected integer[],
    p_counts integer[],
    p_event_ids uuid[],
    p_types text[],
    p_data jsonb[],
    p_metadata jsonb[],
    p_occurred_at timestamptz[],
    p_idempotency_stream text,
    p_idempotency_key text,
    p_idempotency_scope text,
    p_idempotency_principal text,
    p_fingerprint text
) RETURNS TABLE (stream_id text, ok boolean, stream_version integer, transaction_id xid8,
                 log_position bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    m integer := coalesce(array_length(p_stream_ids, 1), 0);
    v_done integer := 0;  -- events of the earlier parts
    n integer;
    v_part record;
    v_keyed boolean;
BEGIN
    -- Every part's stream taken in turn before any write (see append_to_stream): the first
    -- write gives this append its transaction id, so a later part locked after it could
    -- get a version after another append's with an earlier id. In one order (the locks'
    -- keys), so two appends never wait on each other.
    PERFORM pg_advisory_xact_lock(keys.k)
    FROM (SELECT DISTINCT hashtextextended(x, 0) AS k FROM unnest(p_stream_ids) AS x ORDER BY 1)
         AS keys;
    FOR i IN 1 .. m LOOP
        n := p_counts[i];
        IF n = 0 AND m > 1 THEN
            -- Held until commit, so the version checked is the version at commit.
            PERFORM 1 FROM streams s WHERE s.stream_id = p_stream_ids[i] FOR SHARE;
        END IF;
        v_keyed := p_stream_ids[i] = p_idempotency_stream;
        SELECT * INTO v_part FROM append_to_stream(
            p_stream_ids[i], p_stream_types[i], p_expected[i],
            p_event_ids[v_done + 1 : v_done + n], p_types[v_done + 1 : v_done + n],
            p_data[v_done + 1 : v_done + n], p_metadata[v_done + 1 : v_done + n],
            p_occurred_at[v_done + 1 : v_done + n],
            CASE WHEN v_keyed THEN p_idempotency_key END,
            CASE WHEN v_keyed THEN p_idempotency_scope END,
            CASE WHEN v_keyed THEN p_idempotency_principal END,
            CASE WHEN v_keyed THEN p_fingerprint END
        );
        IF NOT v_part.ok THEN
            IF i = 1 THEN
                RETURN QUERY SELECT p_stream_ids[i], false, v_part.stream_version, NULL::xid8,
                                    NULL::bigint;
                RETURN;
            END IF;
            RAISE EXCEPTION 'stream %: expected version %, actual %',
                p_stream_ids[i], p_expected[i], v_part.stream_version
                USING ERRCODE = 'EV409', DETAIL = p_stream_ids[i],
                      HINT = v_part.stream_version::text;
        END IF;
        v_done := v_done + n;
        stream_id := p_stream_ids[i];
        ok := true;
        stream_version := v_part.stream_version;
        transaction_id := v_part.transaction_id;
        log_position := v_part.log_position;
        RETURN NEXT;
    END LOOP;
END;
$$;

