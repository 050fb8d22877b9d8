-- The second half of an edit: store the task the driver computed, if the row is still the version
-- it read (else nothing happens, no row comes back, and the driver reads again), with its event,
-- closing the open attempt when the caller gave up its lease, and telling nodes when the task is
-- schedulable.
-- $1 id  $2 row version read  $3 name  $4 description  $5 payload (JSON text)  $6 target (JSON text)
-- $7 state  $8 scheduled at  $9 deadline  $10 max attempts  $11 timeout ms  $12 backoff (JSON text)
-- $13 attempts  $14 lease owner  $15 lease token  $16 lease expires at  $17 last error
-- $18 updated at (the edit's time)  $19 finished at
-- $20 event type  $21 event data (JSON text)  $22 attempt outcome (NULL: no attempt to close)
-- $23 notification channel (NULL: no notification)
WITH updated AS (
  UPDATE tasks SET name = $3::text, description = $4::text, payload = $5::json, target = $6::json,
    state = $7::text, scheduled_at = $8::bigint, deadline_at = $9::bigint, max_attempts = $10::int,
    timeout_ms = $11::bigint, backoff = $12::json, attempts = $13::int, lease_owner = $14::text,
    lease_token = $15::text, lease_expires_at = $16::bigint, last_error = $17::text,
    updated_at = $18::bigint, finished_at = $19::bigint
  WHERE id = $1::text AND xmin = $2::text::xid
  RETURNING *
),
closed_attempt AS (
  UPDATE task_attempts a SET ended_at = $18::bigint, outcome = $22::text, error = NULL
  FROM updated u
  WHERE $22::text IS NOT NULL AND a.task_id = u.id AND a.outcome IS NULL
),
event AS (
  INSERT INTO task_events (task_id, namespace, name, type, attempt, at, data)
  SELECT u.id, u.namespace, u.name, $20::text, u.attempts, $18::bigint, $21::json
  FROM updated u
)
SELECT u.*,
  CASE WHEN $23::text IS NOT NULL AND u.state = 'scheduled' THEN pg_notify($23::text, u.scheduled_at::text) END
    IS NULL AS quiet
FROM updated u;
