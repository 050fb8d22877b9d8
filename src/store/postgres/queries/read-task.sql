-- The first half of an edit (cancel, update, retry, run now): the task as it is, its row version
-- (xmin) to fence the write with, and the database clock for an edit made without `now`.
-- $1 task id
SELECT t.*, t.xmin::text AS row_version,
  floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS db_now
FROM tasks t
WHERE t.id = $1::text;
