// Command harness drives River (github.com/riverqueue/river) for the peer benchmark.
// It is run as `harness '<json>'`; see ../README.md for the protocol.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// request is the one JSON argument of the protocol.
type request struct {
	Command     string   `json:"command"`
	System      string   `json:"system"`
	Profile     string   `json:"profile"`
	PostgresURL string   `json:"postgresUrl"`
	Schema      string   `json:"schema"`
	Count       int      `json:"count"`
	API         string   `json:"api"`
	BatchSize   int      `json:"batchSize"`
	FirstDueAt  float64  `json:"firstDueAt"`
	IntervalMs  float64  `json:"intervalMs"`
	RecordFile  string   `json:"recordFile"`
	Concurrency *int     `json:"concurrency"`
	HandlerMs   *float64 `json:"handlerMs"`
	LeaseMs     *float64 `json:"leaseMs"`
}

// logger sends River's log to stderr (its default logger writes to stdout, which the protocol
// reserves). HARNESS_LOG=debug|info raises the level for diagnosis.
var logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("HARNESS_LOG"))); err != nil {
		return slog.LevelWarn
	}
	return l
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "river harness: "+strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: %s '<json>'", os.Args[0])
	}
	var req request
	dec := json.NewDecoder(strings.NewReader(os.Args[1]))
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("bad JSON argument: %w", err)
	}
	if req.System != "" && req.System != "river" {
		return fmt.Errorf("unknown system %q (this harness serves river)", req.System)
	}
	if req.Profile != "defaults" && req.Profile != "tuned" {
		return fmt.Errorf("unknown profile %q (defaults or tuned)", req.Profile)
	}
	if req.PostgresURL == "" {
		return fmt.Errorf("postgresUrl is required")
	}
	if req.Schema == "" {
		return fmt.Errorf("schema is required")
	}

	ctx := context.Background()
	switch req.Command {
	case "setup":
		return setup(ctx, &req)
	case "ingest", "enqueue":
		return insert(ctx, &req)
	case "work":
		return work(ctx, &req)
	default:
		return fmt.Errorf("unknown command %q", req.Command)
	}
}

// openPool opens a pgx pool on postgresUrl and checks the connection, so that later timings
// exclude connection setup.
func openPool(ctx context.Context, req *request, p *profile) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(req.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("bad postgresUrl: %w", err)
	}
	if p != nil && p.poolMaxConns > 0 && !strings.Contains(req.PostgresURL, "pool_max_conns") {
		cfg.MaxConns = p.poolMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}

// emit prints one protocol line on stdout.
func emit(v any) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}
