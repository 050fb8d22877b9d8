-- taskRelease: give back leases never started (shutdown), in one statement, fenced by token.
-- $1 now (bigint; NULL: the database clock)   $2 task ids   $3 lease tokens   $4 notification channel
-- Returns one row: `applied`, the 1-based positions of the leases given back.
-- Fenced by the token alone, as in complete.sql (which says why).
-- The attempt is refunded (the task never ran) and logged 'released'; nodes are told the tasks
-- are schedulable again.
WITH clock AS (
  SELECT coalesce($1::bigint, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS now
),
input AS (
  SELECT * FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS i(id, token, ord)
),
chosen AS (
  SELECT DISTINCT ON (i.id) i.*
  FROM input i JOIN tasks t ON t.id = i.id AND t.lease_token = i.token
  ORDER BY i.id, i.ord
),
updated AS (
  UPDATE tasks t SET
    state = 'scheduled', attempts = t.attempts - 1,
    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
    updated_at = k.now
  FROM chosen c CROSS JOIN clock k
  WHERE t.id = c.id AND t.lease_token = c.token
  RETURNING t.id, t.namespace, t.name, t.scheduled_at, t.attempts, c.ord, k.now
),
closed_attempts AS (
  UPDATE task_attempts a SET ended_at = u.now, outcome = 'released', error = NULL
  FROM updated u
  WHERE a.task_id = u.id AND a.outcome IS NULL
),
events AS (
  INSERT INTO task_events (task_id, namespace, name, type, attempt, at, data)
  SELECT u.id, u.namespace, u.name, 'released', u.attempts, u.now, NULL
  FROM updated u
  ORDER BY u.ord
)
SELECT
  (SELECT coalesce(array_agg(u.ord::int ORDER BY u.ord), '{}') FROM updated u) AS applied,
  (SELECT pg_notify($4::text, min(u.scheduled_at)::text) FROM updated u HAVING count(*) > 0) IS NULL AS quiet;
