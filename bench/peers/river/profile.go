package main

import (
	"fmt"
	"time"

	"github.com/riverqueue/river"
)

// profile holds the River settings of one benchmark profile. Zero values leave River's own
// defaults in place. SETTINGS.md lists them with references.
type profile struct {
	maxWorkers           int
	fetchPollInterval    time.Duration
	fetchCooldown        time.Duration
	jobTimeout           time.Duration
	rescueStuckJobsAfter time.Duration
	poolMaxConns         int32
}

func profileFor(req *request) (*profile, error) {
	var p profile
	switch req.Profile {
	case "defaults":
		// River has no default for MaxWorkers (it is required); 100 is the docs' example value.
		p.maxWorkers = 100
		if req.LeaseMs != nil {
			logger.Warn("leaseMs ignored by the defaults profile (RescueStuckJobsAfter stays at River's 1 h)")
		}
	case "tuned":
		p.maxWorkers = 500
		p.fetchPollInterval = 10 * time.Millisecond
		p.fetchCooldown = 2 * time.Millisecond
		p.poolMaxConns = 10
		if req.LeaseMs != nil {
			lease := time.Duration(*req.LeaseMs * float64(time.Millisecond))
			if lease <= 0 {
				return nil, fmt.Errorf("leaseMs must be > 0")
			}
			// RescueStuckJobsAfter must be >= JobTimeout, and a job is only rescued once it has
			// also run longer than its JobTimeout, so JobTimeout comes down with it.
			p.rescueStuckJobsAfter = lease
			p.jobTimeout = min(lease, river.JobTimeoutDefault)
		}
	}
	if req.Concurrency != nil {
		if *req.Concurrency < 1 || *req.Concurrency > river.QueueNumWorkersMax {
			return nil, fmt.Errorf("concurrency must be in 1..%d", river.QueueNumWorkersMax)
		}
		p.maxWorkers = *req.Concurrency
	}
	return &p, nil
}

// config returns the river.Config of the profile. With workers nil it is an insert-only client
// (no Queues, no Workers): it runs no producer, elector or maintenance services.
func (p *profile) config(schema string, workers *river.Workers) *river.Config {
	cfg := &river.Config{
		Schema:               schema,
		Logger:               logger, // River's default logger writes to stdout
		FetchPollInterval:    p.fetchPollInterval,
		FetchCooldown:        p.fetchCooldown,
		JobTimeout:           p.jobTimeout,
		RescueStuckJobsAfter: p.rescueStuckJobsAfter,
	}
	if workers != nil {
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: p.maxWorkers}}
	}
	return cfg
}
