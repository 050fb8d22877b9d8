-- Worker queues: a task with a worker target waits in its queue until a node with a worker
-- long-polling that queue claims it. The queue is derived from the target, so the insert and edit
-- statements need not know about it.
ALTER TABLE tasks ADD COLUMN queue text COLLATE "C"
  GENERATED ALWAYS AS (CASE WHEN target ->> 'type' = 'worker' THEN target ->> 'queue' END) STORED;

-- Nodes claim their own tasks (no queue) from one index and a queue's tasks, only while a worker
-- waits on it, from another: a queue nobody serves is never walked by the claims.
DROP INDEX tasks_claim_idx;
CREATE INDEX tasks_claim_idx ON tasks (scheduled_at, id) WHERE state = 'scheduled' AND queue IS NULL;
CREATE INDEX tasks_queue_idx ON tasks (queue, scheduled_at, id) WHERE state = 'scheduled' AND queue IS NOT NULL;
