package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// noopArgs is the task payload {"i": <index>, "due": <epoch ms>}.
type noopArgs struct {
	I   int     `json:"i"`
	Due float64 `json:"due"`
}

func (noopArgs) Kind() string { return "noop" }

// setup creates the schema and runs River's migrations in it.
func setup(ctx context.Context, req *request) error {
	// Fail before creating anything if River would refuse the schema name (letters, digits and
	// underscores, and a length limit).
	if _, err := river.NewClient(riverpgxv5.New(nil), &river.Config{Schema: req.Schema, Logger: logger}); err != nil {
		return fmt.Errorf("schema %q: %w", req.Schema, err)
	}
	pool, err := openPool(ctx, req, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{req.Schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: req.Schema, Logger: logger})
	if err != nil {
		return fmt.Errorf("migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// insertOpts schedules a task at its due time. A task already due when it is inserted gets no
// ScheduledAt: River documents ScheduledAt as a time in the future, and any non-zero value makes
// the job `scheduled`, to wait for the leader's scheduler; without it the job is `available` at once.
// PostgreSQL keeps microseconds, so due is rounded up to one.
func insertOpts(due float64, now time.Time) *river.InsertOpts {
	at := time.UnixMicro(int64(math.Ceil(due * 1000)))
	if !at.After(now) {
		return &river.InsertOpts{}
	}
	return &river.InsertOpts{ScheduledAt: at}
}

func dueOf(req *request, i int) float64 { return req.FirstDueAt + float64(i)*req.IntervalMs }

// insert implements ingest and enqueue: count tasks, one Insert per task (single) or
// InsertManyFast per batchSize tasks (batch), timing only the inserts.
func insert(ctx context.Context, req *request) error {
	if req.Count < 0 {
		return fmt.Errorf("count must be >= 0")
	}
	if req.API != "single" && req.API != "batch" {
		return fmt.Errorf("unknown api %q (single or batch)", req.API)
	}
	batchSize := req.BatchSize
	if req.API == "batch" && batchSize < 1 {
		return fmt.Errorf("batchSize must be >= 1 for api batch")
	}
	p, err := profileFor(req)
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, req, p)
	if err != nil {
		return err
	}
	defer pool.Close()
	client, err := river.NewClient(riverpgxv5.New(pool), p.config(req.Schema, nil))
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := warmUp(ctx, pool, req.Schema); err != nil {
		return err
	}

	began := time.Now()
	if req.API == "single" {
		for i := 0; i < req.Count; i++ {
			due := dueOf(req, i)
			if _, err := client.Insert(ctx, noopArgs{I: i, Due: due}, insertOpts(due, time.Now())); err != nil {
				return fmt.Errorf("insert %d: %w", i, err)
			}
		}
	} else {
		params := make([]river.InsertManyParams, 0, min(batchSize, req.Count))
		for from := 0; from < req.Count; from += batchSize {
			to := min(from+batchSize, req.Count)
			params = params[:0]
			now := time.Now()
			for i := from; i < to; i++ {
				due := dueOf(req, i)
				params = append(params, river.InsertManyParams{Args: noopArgs{I: i, Due: due}, InsertOpts: insertOpts(due, now)})
			}
			n, err := client.InsertManyFast(ctx, params)
			if err != nil {
				return fmt.Errorf("insert batch at %d: %w", from, err)
			}
			if n != to-from {
				return fmt.Errorf("insert batch at %d: %d of %d rows inserted", from, n, to-from)
			}
		}
	}
	elapsed := time.Since(began)
	// Untimed: give the planner statistics on the fresh table, as autovacuum would within its
	// naptime (1 min). Without them, the leader's JobSchedule query plans a nested loop that is
	// quadratic in the jobs it promotes per pass (3,000 jobs: ~10 s per pass here).
	if _, err := pool.Exec(ctx, "ANALYZE "+pgx.Identifier{req.Schema, "river_job"}.Sanitize()); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	emit(doneLine{Event: "done", Count: req.Count, Ms: float64(elapsed.Nanoseconds()) / 1e6})
	return nil
}

type doneLine struct {
	Event string  `json:"event"`
	Count int     `json:"count"`
	Ms    float64 `json:"ms"`
}

// warmUp opens the pool's connections the insert path uses and checks the River tables exist,
// so the timed part carries no connection setup.
func warmUp(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	conns := make([]*pgxpool.Conn, 0, 2)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range 2 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		conns = append(conns, c)
	}
	table := pgx.Identifier{schema, "river_job"}.Sanitize()
	if _, err := conns[0].Exec(ctx, "SELECT 1 FROM "+table+" LIMIT 0"); err != nil {
		return fmt.Errorf("no River tables in schema %q (run setup first): %w", schema, err)
	}
	return nil
}
