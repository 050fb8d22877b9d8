-- taskComplete: a batch of outcomes in one statement, each fenced by its lease token.
-- $1 now (bigint; NULL: the database clock)   $2 task ids   $3 lease tokens
-- $4 kinds ('succeeded' | 'retry' | 'failed' | 'expired')   $5 started at   $6 ended at
-- $7 errors (retry and failed only)   $8 retry at (retry only)   $9 notification channel
-- Returns one row: `applied`, the 1-based positions of the outcomes that took effect.
--
-- An outcome applies while its token is the task's current lease. A task holds a lease token only
-- while running (every other state clears it), so the token alone fences: the statement says
-- nothing of `state`, which would let the planner drive the join from the state index — with
-- statistics taken when few tasks ran, it then rescanned the batch for every running task (10 s
-- for 500 outcomes beside a million scheduled tasks) instead of looking tasks up by id.
-- The same task may appear twice in a batch: the first outcome holding the lease applies, and the
-- lease it clears fences the rest.
-- Retries make tasks schedulable again: nodes are told (pg_notify, delivered on commit).
WITH clock AS (
  SELECT coalesce($1::bigint, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS now
),
input AS (
  SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::bigint[])
    WITH ORDINALITY AS i(id, token, kind, started_at, ended_at, error, retry_at, ord)
),
chosen AS (
  SELECT DISTINCT ON (i.id) i.*
  FROM input i JOIN tasks t ON t.id = i.id AND t.lease_token = i.token
  ORDER BY i.id, i.ord
),
updated AS (
  UPDATE tasks t SET
    state = CASE c.kind WHEN 'retry' THEN 'scheduled' ELSE c.kind END,
    scheduled_at = CASE c.kind WHEN 'retry' THEN c.retry_at ELSE t.scheduled_at END,
    last_error = coalesce(c.error, t.last_error),
    finished_at = CASE c.kind WHEN 'retry' THEN NULL ELSE k.now END,
    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
    updated_at = k.now
  FROM chosen c CROSS JOIN clock k
  -- Checked again against the row as it is now, should another transaction have changed it.
  WHERE t.id = c.id AND t.lease_token = c.token
  RETURNING t.id, t.namespace, t.name, t.state, t.scheduled_at, t.attempts,
    c.kind, c.error, c.retry_at, c.started_at, c.ended_at, c.ord, k.now
),
closed_attempts AS (
  UPDATE task_attempts a SET
    started_at = coalesce(u.started_at, a.started_at), ended_at = u.ended_at, outcome = u.kind, error = u.error
  FROM updated u
  WHERE a.task_id = u.id AND a.outcome IS NULL
),
events AS (
  INSERT INTO task_events (task_id, namespace, name, type, attempt, at, data)
  SELECT u.id, u.namespace, u.name, CASE u.kind WHEN 'retry' THEN 'retry_scheduled' ELSE u.kind END,
    u.attempts, u.now,
    CASE u.kind
      WHEN 'retry' THEN json_build_object('error', u.error, 'retry_at', u.retry_at)
      WHEN 'failed' THEN json_build_object('error', u.error)
    END
  FROM updated u
  ORDER BY u.ord
)
SELECT
  (SELECT coalesce(array_agg(u.ord::int ORDER BY u.ord), '{}') FROM updated u) AS applied,
  (SELECT pg_notify($9::text, min(u.scheduled_at)::text) FROM updated u WHERE u.state = 'scheduled'
   HAVING count(*) > 0) IS NULL AS quiet;
