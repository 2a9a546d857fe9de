// Package testenv builds end-to-end test setups: a private redis-server, the
// DCS simulator over httptest, and in-process workers. Only tests import it.
package testenv

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/dcsjobs/dcsjobs/budget"
	"github.com/dcsjobs/dcsjobs/config"
	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testredis"
	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/worker"
)

// Env is one end-to-end test setup: its own redis-server, a simulator, and
// the config of the workers under test (change Cfg before StartWorker).
type Env struct {
	T      *testing.T
	Redis  *testredis.Server
	Sim    *dcssim.Server
	SimURL string
	Cfg    *config.Config
	Subm   *tasks.Submitter
	Reqs   *tasks.Requests
}

// Config is a worker config for tests: fast polls, quiet logs.
func Config(redisURL, simURL string) *config.Config {
	return &config.Config{
		RedisURL: dcsapi.Secret(redisURL), KeyPrefix: "dcsjobs", DCSEndpoint: simURL,
		ProjectID: dcssim.DefaultProjectID, AccessKey: dcssim.DefaultAK, SecretKey: dcsapi.Secret(dcssim.DefaultSK),
		DCSTimeout: 10 * time.Second, HTTPAddr: "127.0.0.1:0", Concurrency: 10,
		Weights:   config.Weights{Followup: 6, Trigger: 4, Default: 3, Schedule: 1},
		PollFirst: 0, PollNext: time.Second, PollFactor: 1.2, PollMax: 2 * time.Second, Deadline: 2 * time.Minute,
		MaxRetry: 8, Retention: time.Hour, HistoryMax: 50, IdleThreshold: 10 * time.Minute,
		APIBudget: budget.Rate{N: 200, Period: time.Second}, LogLevel: "warn", LogFormat: "console",
	}
}

// New starts a redis-server and a simulator (JobDuration default 1.5s).
func New(t *testing.T, sc dcssim.Config) *Env {
	t.Helper()
	if sc.JobDuration == 0 {
		sc.JobDuration = 1500 * time.Millisecond
	}
	sim, err := dcssim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	r := testredis.Start(t)
	e := &Env{T: t, Redis: r, Sim: sim, SimURL: srv.URL, Cfg: Config(r.URL(), srv.URL)}
	rdb := r.Client()
	e.Reqs = tasks.NewRequests(rdb, e.Cfg.KeyPrefix, e.Cfg.Retention)
	e.Subm = tasks.NewSubmitter(asynq.NewClientFromRedisClient(rdb), e.Reqs, worker.PipelineConfig(e.Cfg))
	return e
}

// StartWorker runs a worker until the end of the test (or until stop).
func (e *Env) StartWorker() (w *worker.Worker, stop func()) {
	e.T.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(e.T)).Level(zerolog.WarnLevel)
	w, err := worker.Start(ctx, e.Cfg, log, worker.Options{})
	if err != nil {
		cancel()
		e.T.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = w.Shutdown()
			cancel()
		}
	}
	e.T.Cleanup(stop)
	return w, stop
}

// Submit submits a request or fails the test.
func (e *Env) Submit(o tasks.SubmitOptions) *tasks.Request {
	e.T.Helper()
	r, err := e.Subm.Submit(context.Background(), o)
	if err != nil {
		e.T.Fatal(err)
	}
	return r
}

// Wait polls a request until it ends (aggregated over children).
func (e *Env) Wait(id string, timeout time.Duration) *tasks.Status {
	e.T.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.Reqs.Status(context.Background(), id)
		if err == nil && st.State().Terminal() {
			return st
		}
		if time.Now().After(deadline) {
			if st != nil {
				e.T.Fatalf("request %s still %s after %v: %+v", id, st.State(), timeout, st.Request)
			}
			e.T.Fatalf("request %s: %v after %v", id, err, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Scans counts the simulator scans of a node.
func (e *Env) Scans(inst, node string) int { return e.Sim.Stats().Scans[dcssim.ScanKey(inst, node)] }

// Single is a request for the default single-node instance (250 sessions).
func Single() tasks.SubmitOptions {
	return tasks.SubmitOptions{InstanceID: dcssim.SingleInstanceID, NodeID: dcssim.SingleNodeID, Origin: tasks.OriginCLI}
}
