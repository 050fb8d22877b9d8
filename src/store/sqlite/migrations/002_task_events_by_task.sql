-- A task's history (taskEvents) reads its events by task id.
CREATE INDEX task_events_task_idx ON task_events (task_id, seq);
