-- Worker queues: a task with a worker target waits in its queue until a node with a worker
-- long-polling that queue claims it. The queue is derived from the target (a virtual column, so
-- the insert and edit statements need not know about it).
ALTER TABLE tasks ADD COLUMN queue TEXT
  GENERATED ALWAYS AS (CASE WHEN json_extract(target, '$.type') = 'worker' THEN json_extract(target, '$.queue') END) VIRTUAL;

-- The claim index gains the queue after the state: nodes walk `state = 'scheduled' AND queue IS
-- NULL` for their own tasks and `queue = ?` for a queue a worker waits on, both in time order, so
-- a queue nobody serves is never walked by the claims.
DROP INDEX tasks_state_idx;
CREATE INDEX tasks_state_idx ON tasks (state, queue, scheduled_at, id);
