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

-- Claims walk the scheduled tasks oldest first through tasks_state_idx (state = 'scheduled', then
-- time order), the same index that lists tasks by state. Lease recovery walks only the running
-- ones. Every index costs each state change a delete and an insert, so there are as few as the
-- claim, recovery and listing paths need (measured: a claim's row update was the largest cost).
CREATE INDEX tasks_state_idx ON tasks (state, scheduled_at, id);
CREATE INDEX tasks_lease_idx ON tasks (lease_expires_at) WHERE state = 'running';

CREATE UNIQUE INDEX tasks_idempotency_idx ON tasks (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Listing pages in (scheduled_at, id) order; filters by namespace or name ride along this order.
CREATE INDEX tasks_list_idx ON tasks (scheduled_at, id);

CREATE TABLE task_attempts (
  id          INTEGER PRIMARY KEY,
  task_id     TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  lease_owner TEXT NOT NULL,
  claimed_at  INTEGER NOT NULL,
  started_at  INTEGER,
  ended_at    INTEGER,
  outcome     TEXT,
  error       TEXT
);
CREATE INDEX task_attempts_task_idx ON task_attempts (task_id);

-- Read in seq order only (the outbox relay), so no other index: each one would cost every
-- state change another B-tree insert. seq is the rowid (max + 1): outbox readers resume from the
-- last seq they saw, which stays true as long as retention deletes the oldest events only.
-- (AUTOINCREMENT would guard against reuse after deleting the newest, at the price of one more
-- write per event.)
CREATE TABLE task_events (
  seq       INTEGER PRIMARY KEY,
  task_id   TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name      TEXT NOT NULL,
  type      TEXT NOT NULL,
  attempt   INTEGER NOT NULL,
  at        INTEGER NOT NULL,
  data      TEXT
);
