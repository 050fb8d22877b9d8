-- taskGet: the task and its attempt log (oldest first, as JSON) in one statement.
-- $1 task id
SELECT t.*,
  (SELECT coalesce(json_agg(a ORDER BY a.id), '[]') FROM task_attempts a WHERE a.task_id = t.id) AS attempt_log
FROM tasks t
WHERE t.id = $1::text;
