-- taskCountByState.
SELECT state, count(*)::int AS count FROM tasks GROUP BY state;
