-- outboxLease: take the cursor's lease if it is free, lapsed or already ours; report who holds it.
-- $1 name  $2 owner  $3 now (null: the database's clock)  $4 ttl ms
WITH clock AS (
  SELECT coalesce($3::bigint, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS now
), taken AS (
  INSERT INTO outbox_cursors AS c (name, seq, owner, lease_expires_at)
  SELECT $1::text, 0, $2::text, clock.now + $4::bigint FROM clock
  ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_expires_at = excluded.lease_expires_at
    WHERE c.owner = excluded.owner OR c.lease_expires_at <= excluded.lease_expires_at - $4::bigint
  RETURNING c.seq, c.owner
)
SELECT seq, owner FROM taken
UNION ALL
SELECT seq, owner FROM outbox_cursors WHERE name = $1::text AND NOT EXISTS (SELECT 1 FROM taken);
