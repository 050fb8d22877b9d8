-- taskHeartbeat: extend leases still held, in one statement, each fenced by its token.
-- $1 now (bigint; NULL: the database clock)   $2 task ids   $3 lease tokens   $4 extensions (ms)
-- A lease never gets shorter; no event is written (the state does not change).
WITH clock AS (
  SELECT coalesce($1::bigint, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS now
),
input AS (
  SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS i(id, token, extend_ms, ord)
)
UPDATE tasks t SET
  lease_expires_at = greatest(t.lease_expires_at, k.now + i.extend_ms),
  updated_at = k.now
FROM input i CROSS JOIN clock k
WHERE t.id = i.id AND t.lease_token = i.token AND t.state = 'running'
RETURNING i.ord::int AS ord, t.lease_expires_at;
