-- taskEvents: one task's events, oldest first.   $1 task id
SELECT * FROM task_events WHERE task_id = $1::text ORDER BY seq;
