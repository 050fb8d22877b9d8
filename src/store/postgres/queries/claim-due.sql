-- taskClaimDue, in one statement.
-- $1 now (bigint; NULL: the database clock)   $2 lookahead ms   $3 limit
-- $4 lease owner                              $5 lease grace ms
-- $6 worker queues to claim from too (text[])   $7 each queue's limit (int[])
-- Returns one row per task claimed or ended, oldest first, each with `verdict` ('claimed',
-- 'expired' or 'failed'), and always at least one row carrying `claim_now` (the time used): with
-- nothing due, that row's task columns are NULL.
--
-- Each branch takes at most $3 rows from its partial index and locks them, skipping rows another
-- claim holds; the merge keeps the oldest $3. Rows a branch locked but the merge dropped stay
-- locked (and skipped by other claims) only until this statement commits.
WITH clock AS (
  SELECT coalesce($1::bigint, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS now
),
scheduled AS (
  SELECT t.* FROM tasks t
  WHERE t.state = 'scheduled' AND t.queue IS NULL AND t.scheduled_at < (SELECT now FROM clock) + $2::bigint
  ORDER BY t.scheduled_at, t.id
  LIMIT $3
  FOR UPDATE SKIP LOCKED
),
lapsed AS (
  SELECT t.* FROM tasks t
  WHERE t.state = 'running' AND t.lease_expires_at <= (SELECT now FROM clock)
    AND (t.queue IS NULL OR t.queue = ANY($6::text[]))
  ORDER BY t.scheduled_at, t.id
  LIMIT $3
  FOR UPDATE SKIP LOCKED
),
-- Each worker queue asked for, up to its own limit, from tasks_queue_idx.
queued AS (
  SELECT t.* FROM unnest($6::text[], $7::int[]) AS q(name, lim)
  CROSS JOIN LATERAL (
    SELECT * FROM tasks
    WHERE state = 'scheduled' AND queue = q.name AND scheduled_at < (SELECT now FROM clock) + $2::bigint
    ORDER BY scheduled_at, id
    LIMIT q.lim
    FOR UPDATE SKIP LOCKED
  ) t
),
due AS (
  SELECT * FROM (
    SELECT * FROM (SELECT * FROM scheduled UNION ALL SELECT * FROM lapsed) both_kinds
    ORDER BY scheduled_at, id
    LIMIT $3
  ) own
  UNION ALL
  SELECT * FROM queued
),
-- As the SQLite driver decides: a deadline passed ends the task expired; a crashed run (lease
-- lapsed) that used the last attempt ends it failed — counting claims, not outcomes, is what stops
-- a task that kills its node from looping; anything else is claimed.
decided AS (
  SELECT d.*, c.now AS clock_now, d.state = 'running' AS crashed,
    CASE
      WHEN d.deadline_at IS NOT NULL AND d.deadline_at < c.now THEN 'expired'
      WHEN d.state = 'running' AND d.attempts >= d.max_attempts THEN 'failed'
      ELSE 'claimed'
    END AS verdict
  FROM due d CROSS JOIN clock c
),
updated AS (
  UPDATE tasks t SET
    state = CASE x.verdict WHEN 'claimed' THEN 'running' ELSE x.verdict END,
    attempts = CASE x.verdict WHEN 'claimed' THEN t.attempts + 1 ELSE t.attempts END,
    lease_owner = CASE x.verdict WHEN 'claimed' THEN $4::text END,
    lease_token = CASE x.verdict WHEN 'claimed' THEN gen_random_uuid()::text END,
    lease_expires_at = CASE x.verdict
      WHEN 'claimed' THEN greatest(t.scheduled_at, x.clock_now) + t.timeout_ms + $5::bigint
    END,
    last_error = CASE x.verdict
      WHEN 'failed' THEN 'lease expired on attempt ' || t.attempts || ' of ' || t.max_attempts
        || ': the node running the task stopped before reporting an outcome, and no attempts are left'
      ELSE t.last_error
    END,
    finished_at = CASE x.verdict WHEN 'claimed' THEN t.finished_at ELSE x.clock_now END,
    updated_at = x.clock_now
  FROM decided x
  WHERE t.id = x.id
  RETURNING t.*, x.verdict, x.clock_now
),
-- The lapsed lease's attempt is over: its holder never reported back.
closed_attempts AS (
  UPDATE task_attempts a SET ended_at = x.clock_now, outcome = 'lease_expired', error = NULL
  FROM decided x
  WHERE x.crashed AND a.task_id = x.id AND a.outcome IS NULL
),
opened_attempts AS (
  INSERT INTO task_attempts (task_id, attempt, lease_owner, claimed_at)
  SELECT u.id, u.attempts, u.lease_owner, u.clock_now
  FROM updated u WHERE u.verdict = 'claimed'
  ORDER BY u.scheduled_at, u.id
),
-- Per task, in claim order: 'lease_expired' for a lapsed lease, then what the claim decided.
events AS (
  INSERT INTO task_events (task_id, namespace, name, type, attempt, at, data)
  SELECT e.task_id, e.namespace, e.name, e.type, e.attempt, e.at, e.data FROM (
    SELECT x.id AS task_id, x.namespace, x.name, 'lease_expired' AS type, x.attempts AS attempt,
      x.clock_now AS at,
      json_build_object('lease_owner', x.lease_owner, 'lease_expires_at', x.lease_expires_at) AS data,
      x.scheduled_at, 0 AS step
    FROM decided x WHERE x.crashed
    UNION ALL
    SELECT u.id, u.namespace, u.name, u.verdict, u.attempts, u.clock_now,
      CASE u.verdict
        WHEN 'claimed' THEN json_build_object('lease_owner', u.lease_owner)
        WHEN 'failed' THEN json_build_object('error', u.last_error)
        ELSE json_build_object('deadline_at', u.deadline_at)
      END,
      u.scheduled_at, 1
    FROM updated u
  ) e
  ORDER BY e.scheduled_at, e.task_id, e.step
)
SELECT c.now AS claim_now, u.*
FROM clock c LEFT JOIN updated u ON true
ORDER BY u.scheduled_at, u.id;
