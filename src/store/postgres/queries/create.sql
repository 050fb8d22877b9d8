-- taskCreate: a batch of tasks in one statement, honouring idempotency keys.
-- $1 now (bigint; NULL: the database clock)
-- $2 ids  $3 namespaces  $4 names  $5 descriptions  $6 payloads (JSON text)  $7 targets (JSON text)
-- $8 scheduled at  $9 deadlines  $10 max attempts  $11 timeouts ms  $12 backoffs (JSON text)
-- $13 idempotency keys  $14 request hashes
-- $15 claim: lease owner (NULL: create only)  $16 claim lookahead ms  $17 claim max  $18 lease grace ms
-- $19 notification channel
-- Returns one row: `created` (each inserted task with its 1-based position) and `existing` (each
-- position whose key an earlier task already holds, with that task), as JSON arrays.
--
-- A key repeated inside the batch belongs to its first task; the later ones are answered by the
-- driver against it. A key taken by another transaction after this statement's snapshot is
-- skipped by ON CONFLICT: the statement then raises serialization_failure (rolling back what it
-- inserted) and the driver runs it again, when the key shows up as existing.
WITH clock AS (
  SELECT coalesce($1::bigint, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS now
),
input AS (
  SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::bigint[], $9::bigint[], $10::int[], $11::bigint[], $12::text[], $13::text[], $14::text[])
    WITH ORDINALITY AS i(id, namespace, name, description, payload, target, scheduled_at, deadline_at,
                         max_attempts, timeout_ms, backoff, idempotency_key, request_hash, ord)
),
existing AS (
  SELECT i.ord, t.* FROM input i
  JOIN tasks t ON t.namespace = i.namespace AND t.idempotency_key = i.idempotency_key
),
fresh AS (
  SELECT i.* FROM (
    SELECT i.*, row_number() OVER (PARTITION BY i.namespace, i.idempotency_key ORDER BY i.ord) AS nth_of_key
    FROM input i
  ) i
  WHERE (i.idempotency_key IS NULL OR i.nth_of_key = 1)
    AND NOT EXISTS (SELECT 1 FROM existing e WHERE e.ord = i.ord)
),
-- Create-and-claim: the first $17 tasks due within the lookahead are inserted already leased
-- (not those for a worker queue: they wait for a node whose workers ask for them).
planned AS (
  SELECT f.*, c.now,
    $15::text IS NOT NULL AND f.scheduled_at < c.now + $16::bigint AND NOT f.for_worker
      AND count(*) FILTER (WHERE f.scheduled_at < c.now + $16::bigint AND NOT f.for_worker)
        OVER (ORDER BY f.ord) <= $17::int
      AS claimed
  FROM (SELECT f.*, coalesce(f.target::json ->> 'type' = 'worker', false) AS for_worker FROM fresh f) f
  CROSS JOIN clock c
),
inserted AS (
  INSERT INTO tasks (id, namespace, name, description, payload, target, state, scheduled_at, deadline_at,
    max_attempts, timeout_ms, backoff, idempotency_key, request_hash, attempts, lease_owner, lease_token,
    lease_expires_at, last_error, created_at, updated_at, finished_at)
  SELECT p.id, p.namespace, p.name, p.description, p.payload::json, p.target::json,
    CASE WHEN p.claimed THEN 'running' ELSE 'scheduled' END, p.scheduled_at, p.deadline_at,
    p.max_attempts, p.timeout_ms, p.backoff::json, p.idempotency_key, p.request_hash,
    CASE WHEN p.claimed THEN 1 ELSE 0 END,
    CASE WHEN p.claimed THEN $15::text END,
    CASE WHEN p.claimed THEN gen_random_uuid()::text END,
    CASE WHEN p.claimed THEN greatest(p.scheduled_at, p.now) + p.timeout_ms + $18::bigint END,
    NULL, p.now, p.now, NULL
  FROM planned p
  ORDER BY p.ord
  ON CONFLICT (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING *
),
created AS (
  SELECT p.ord, i.* FROM inserted i JOIN planned p ON p.id = i.id
),
opened_attempts AS (
  INSERT INTO task_attempts (task_id, attempt, lease_owner, claimed_at)
  SELECT c.id, c.attempts, c.lease_owner, c.created_at FROM created c WHERE c.state = 'running'
  ORDER BY c.ord
),
-- Per task, in input order: 'created', then 'claimed' when it was inserted leased.
events AS (
  INSERT INTO task_events (task_id, namespace, name, type, attempt, at, data)
  SELECT e.task_id, e.namespace, e.name, e.type, e.attempt, e.at, e.data FROM (
    SELECT c.id AS task_id, c.namespace, c.name, 'created' AS type, 0 AS attempt, c.created_at AS at,
      NULL::json AS data, c.ord, 0 AS step
    FROM created c
    UNION ALL
    SELECT c.id, c.namespace, c.name, 'claimed', c.attempts, c.created_at,
      json_build_object('lease_owner', c.lease_owner), c.ord, 1
    FROM created c WHERE c.state = 'running'
  ) e
  ORDER BY e.ord, e.step
)
SELECT
  CASE
    WHEN EXISTS (SELECT 1 FROM planned p WHERE p.idempotency_key IS NOT NULL AND p.id NOT IN (SELECT id FROM inserted))
    THEN punctual_retry_statement('an idempotency key was taken by a concurrent create')
  END AS raced,
  (SELECT coalesce(json_agg(c ORDER BY c.ord), '[]') FROM created c) AS created,
  (SELECT coalesce(json_agg(e ORDER BY e.ord), '[]') FROM existing e) AS existing,
  (SELECT pg_notify($19::text, min(c.scheduled_at)::text) FROM created c WHERE c.state = 'scheduled'
   HAVING count(*) > 0) IS NULL AS quiet;
