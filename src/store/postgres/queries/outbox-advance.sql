-- outboxAdvance: move the cursor forward, only for the node holding it.
-- $1 name  $2 owner  $3 seq
UPDATE outbox_cursors SET seq = greatest(seq, $3::bigint)
WHERE name = $1::text AND owner = $2::text
RETURNING seq;
