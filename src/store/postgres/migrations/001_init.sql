-- Tasks, their attempt log and their event outbox, in the schema named by the store URL (the
-- runner sets search_path). Times and durations are BIGINT epoch ms, the contract's numbers 1:1.
-- JSON columns are json, not jsonb: a payload comes back byte for byte as it was given.
-- Text that orders or pages (ids, keys, names) uses the "C" collation: byte order, as JavaScript
-- compares, whatever the database's locale.

CREATE TABLE tasks (
  id               text COLLATE "C" PRIMARY KEY,
  namespace        text COLLATE "C" NOT NULL,
  name             text COLLATE "C" NOT NULL,
  description      text,
  payload          json,
  target           json,
  state            text NOT NULL
                   CHECK (state IN ('scheduled', 'running', 'succeeded', 'failed', 'canceled', 'expired')),
  scheduled_at     bigint NOT NULL,
  deadline_at      bigint,
  max_attempts     integer NOT NULL,
  timeout_ms       bigint NOT NULL,
  backoff          json NOT NULL,
  idempotency_key  text COLLATE "C",
  request_hash     text,
  attempts         integer NOT NULL DEFAULT 0,
  lease_owner      text,
  lease_token      text,
  lease_expires_at bigint,
  last_error       text,
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL,
  finished_at      bigint
);

-- Claims walk only the scheduled tasks, oldest first; lease recovery walks only the running ones.
-- Partial, so finished tasks (the bulk of a long-lived table) cost these indexes nothing.
CREATE INDEX tasks_claim_idx ON tasks (scheduled_at, id) WHERE state = 'scheduled';
CREATE INDEX tasks_lease_idx ON tasks (lease_expires_at) WHERE state = 'running';

CREATE UNIQUE INDEX tasks_idempotency_idx ON tasks (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Listing pages in (scheduled_at, id) order, optionally by state; filters by namespace or name
-- ride along that order. An update that changes a task's state (every claim and completion) adds
-- an entry to every index, so there are no more than the claim, recovery and listing paths need.
CREATE INDEX tasks_list_idx ON tasks (scheduled_at, id);
CREATE INDEX tasks_list_state_idx ON tasks (state, scheduled_at, id);

-- Attempt and event rows carry no foreign key to tasks: they are only ever written by the same
-- statement that writes their task, and the per-row checks cost about 18 ms per 1,000 rows and
-- table on the reference machine (EXPLAIN ANALYZE of a 1,000-task claim: 37 of 175 ms). Whatever
-- deletes tasks one day deletes their attempts and events in the same transaction.
CREATE TABLE task_attempts (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id     text COLLATE "C" NOT NULL,
  attempt     integer NOT NULL,
  lease_owner text NOT NULL,
  claimed_at  bigint NOT NULL,
  started_at  bigint,
  ended_at    bigint,
  outcome     text,
  error       text
);
CREATE INDEX task_attempts_task_idx ON task_attempts (task_id);

CREATE TABLE task_events (
  seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id   text COLLATE "C" NOT NULL,
  namespace text NOT NULL,
  name      text NOT NULL,
  type      text NOT NULL,
  attempt   integer NOT NULL,
  at        bigint NOT NULL,
  data      json
);
CREATE INDEX task_events_task_idx ON task_events (task_id);

-- Outbox readers resume after the last seq they saw, so no event may become visible after one with
-- a larger seq was read. A sequence alone does not promise that: a transaction may draw seq 9 and
-- commit after another drew 10 and committed. So every statement that writes events first takes
-- a shared lock, held until it commits, and a reader (task_events_horizon) briefly takes the same
-- lock exclusively: once it has it, every seq drawn so far belongs to a finished transaction, and
-- reading up to the sequence's last value can skip nothing. Writers never wait for one another.
-- The key is the table's oid, so stores in other schemas of the database do not contend.
-- A writer asking for the shared lock while a reader waits queues behind the reader; should that
-- reader wait on a writer that waits on the first writer's row locks, PostgreSQL's deadlock check
-- reorders the queue after deadlock_timeout (1 s by default): a rare pause, never an error.
CREATE FUNCTION task_events_write_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(TG_RELID::bigint);
  RETURN NULL;
END
$$;

-- BEFORE ... FOR EACH STATEMENT runs before the first row is formed, so before the first seq is drawn.
CREATE TRIGGER task_events_write_lock BEFORE INSERT ON task_events
  FOR EACH STATEMENT EXECUTE FUNCTION task_events_write_lock();

-- The highest seq an outbox reader may read up to now (0 when none was ever drawn). Call it in a
-- statement of its own: the events must be read by a later statement, whose snapshot is newer.
CREATE FUNCTION task_events_horizon() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  horizon bigint;
BEGIN
  PERFORM pg_advisory_xact_lock('task_events'::regclass::oid::bigint);
  EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s',
                 pg_get_serial_sequence('task_events', 'seq'))
    INTO horizon;
  RETURN horizon;
END
$$;

-- Raised from inside a statement that found it raced another transaction (two creates taking the
-- same idempotency key at once): the statement rolls back and the driver runs it again.
CREATE FUNCTION punctual_retry_statement(reason text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'serialization_failure', MESSAGE = reason;
END
$$;
