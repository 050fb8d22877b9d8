-- The highest seq eventList may return now: see task_events_horizon in migrations/001_init.sql.
SELECT task_events_horizon() AS horizon;
