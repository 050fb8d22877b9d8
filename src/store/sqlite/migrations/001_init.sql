-- Tasks, their attempt log and their event outbox. Times are INTEGER epoch ms; JSON columns are TEXT.

CREATE TABLE tasks (
  id               TEXT PRIMARY KEY,
  namespace        TEXT NOT NULL,
  name             TEXT NOT NULL,
  description      TEXT,
  payload          TEXT,
  target           TEXT,
  state            TEXT NOT NULL
                   CHECK (state IN ('scheduled', 'running', 'succeeded', 'failed', 'canceled', 'expired')),
  scheduled_at     INTEGER NOT NULL,
  deadline_at      INTEGER,
  max_attempts     INTEGER NOT NULL,
  timeout_ms       INTEGER NOT NULL,
  backoff          TEXT NOT NULL,
  idempotency_key  TEXT,
  request_hash     TEXT,
  attempts         INTEGER NOT NULL DEFAULT 0,
  lease_owner      TEXT,
  lease_token      TEXT,
  lease_expires_at INTEGER,
  last_error       TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  finished_at      INTEGER
);

-- Claims walk only the scheduled tasks, oldest first; lease recovery walks only the running ones.
-- Partial, so finished tasks (the bulk of a long-lived table) cost these indexes nothing.
CREATE INDEX tasks_claim_idx ON tasks (scheduled_at, id) WHERE state = 'scheduled';
CREATE INDEX tasks_lease_idx ON tasks (lease_expires_at) WHERE state = 'running';

CREATE UNIQUE INDEX tasks_idempotency_idx ON tasks (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Listing pages in (scheduled_at, id) order, optionally filtered by state, namespace or name.
CREATE INDEX tasks_list_idx ON tasks (scheduled_at, id);
CREATE INDEX tasks_list_state_idx ON tasks (state, scheduled_at, id);
CREATE INDEX tasks_list_namespace_idx ON tasks (namespace, scheduled_at, id);
CREATE INDEX tasks_list_name_idx ON tasks (name, scheduled_at, id);

CREATE TABLE task_attempts (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  attempt     INTEGER NOT NULL,
  lease_owner TEXT NOT NULL,
  claimed_at  INTEGER NOT NULL,
  started_at  INTEGER,
  ended_at    INTEGER,
  outcome     TEXT,
  error       TEXT
);
CREATE INDEX task_attempts_task_idx ON task_attempts (task_id);

-- AUTOINCREMENT so a sequence number is never reused, even after the newest events are deleted:
-- outbox readers resume from the last seq they saw.
CREATE TABLE task_events (
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id   TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  namespace TEXT NOT NULL,
  name      TEXT NOT NULL,
  type      TEXT NOT NULL,
  attempt   INTEGER NOT NULL,
  at        INTEGER NOT NULL,
  data      TEXT
);
CREATE INDEX task_events_task_idx ON task_events (task_id);
