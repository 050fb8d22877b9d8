-- Where each outbox reader (the Kafka event relay) has got to in task_events, and which node holds
-- it: one relay per cluster publishes, the others wait for its lease to lapse.
CREATE TABLE outbox_cursors (
  name             TEXT PRIMARY KEY,
  seq              INTEGER NOT NULL DEFAULT 0,
  owner            TEXT,
  lease_expires_at INTEGER NOT NULL DEFAULT 0
);
