-- eventList, after task_events_horizon() (a statement of its own, run just before) gave $2.
-- $1 after seq  $2 horizon  $3 limit
SELECT * FROM task_events WHERE seq > $1::bigint AND seq <= $2::bigint ORDER BY seq LIMIT $3::int;
