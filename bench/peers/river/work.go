package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// recorder appends `<i> <due> <start>\n` to the record file, one write(2) per record, and
// `<i> <due> <start> <end>\n` when a handler that sleeps returns.
type recorder struct {
	mu sync.Mutex
	f  *os.File
}

func (r *recorder) record(i int, due float64, times ...time.Time) error {
	line := make([]byte, 0, 80)
	line = strconv.AppendInt(line, int64(i), 10)
	line = append(line, ' ')
	line = strconv.AppendFloat(line, due, 'f', -1, 64)
	for _, t := range times {
		line = append(line, ' ')
		line = strconv.AppendFloat(line, float64(t.UnixNano())/1e6, 'f', 3, 64)
	}
	line = append(line, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.f.Write(line)
	return err
}

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	rec     *recorder
	handler time.Duration
}

func (w *noopWorker) Work(ctx context.Context, job *river.Job[noopArgs]) error {
	start := time.Now()
	if err := w.rec.record(job.Args.I, job.Args.Due, start); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if w.handler > 0 {
		time.Sleep(w.handler)
		if err := w.rec.record(job.Args.I, job.Args.Due, start, time.Now()); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	return nil
}

// work starts a River client on the default queue, prints ready once it is started and a leader
// is elected (the leader runs the scheduler that makes future jobs available, and the rescuer;
// see awaitLeadership), and runs jobs until SIGTERM.
func work(ctx context.Context, req *request) error {
	if req.RecordFile == "" {
		return fmt.Errorf("recordFile is required")
	}
	p, err := profileFor(req)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(req.RecordFile, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open recordFile: %w", err)
	}
	defer f.Close()
	w := &noopWorker{rec: &recorder{f: f}}
	if req.HandlerMs != nil && *req.HandlerMs > 0 {
		w.handler = time.Duration(*req.HandlerMs * float64(time.Millisecond))
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	pool, err := openPool(ctx, req, p)
	if err != nil {
		return err
	}
	defer pool.Close()
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return fmt.Errorf("add worker: %w", err)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), p.config(req.Schema, workers))
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}

	leader := make(chan error, 1)
	leaderCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	go func() { leader <- awaitLeadership(leaderCtx, pool, req.Schema, client.ID()) }()
	select {
	case err := <-leader:
		if err != nil {
			_ = stop(client)
			return err
		}
	case <-sigs:
		return stop(client)
	case <-client.Stopped():
		return errors.New("client stopped unexpectedly")
	}
	emit(map[string]string{"event": "ready"})

	select {
	case <-sigs:
		return stop(client)
	case <-client.Stopped():
		return errors.New("client stopped unexpectedly")
	}
}

// stop lets running jobs finish (Client.Stop), cancelling them if that takes over 60 s.
func stop(client *river.Client[pgx.Tx]) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := client.Stop(ctx); err != nil {
		hard, cancelHard := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancelHard()
		if err := client.StopAndCancel(hard); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
	}
	return nil
}

// awaitLeadership waits until this client is elected leader, which on a fresh schema (or after a
// graceful stop, which resigns) takes a few milliseconds. If another client already holds
// leadership (for instance one killed without resigning: its term lasts until its TTL of 15 s
// runs out), it returns at once: available jobs run without the leader, and the wait until this
// client takes over belongs to the measurement.
func awaitLeadership(ctx context.Context, pool *pgxpool.Pool, schema, clientID string) error {
	query := "SELECT leader_id, expires_at, expires_at > now() FROM " + pgx.Identifier{schema, "river_leader"}.Sanitize()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var id string
		var expires time.Time
		var live bool
		err := pool.QueryRow(ctx, query).Scan(&id, &expires, &live)
		switch {
		case err == nil && id == clientID:
			return nil
		case err == nil && live:
			logger.Warn("leadership held by another client; scheduled jobs and rescues wait for it",
				"leader_id", id, "expires_at", expires)
			return nil
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read river_leader: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no leader elected within 30 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
