package worker

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
)

// env is one end-to-end test setup: its own redis-server, a simulator, and
// the config of the workers under test.
type env struct {
	t      *testing.T
	redis  *testredis.Server
	sim    *dcssim.Server
	simURL string
	cfg    *config.Config
	subm   *tasks.Submitter
	reqs   *tasks.Requests
}

func testConfig(redisURL, simURL string) *config.Config {
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

func newEnv(t *testing.T, sc dcssim.Config) *env {
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
	e := &env{t: t, redis: r, sim: sim, simURL: srv.URL, cfg: testConfig(r.URL(), srv.URL)}
	rdb := r.Client()
	e.reqs = tasks.NewRequests(rdb, e.cfg.KeyPrefix, e.cfg.Retention)
	e.subm = tasks.NewSubmitter(asynq.NewClientFromRedisClient(rdb), e.reqs, PipelineConfig(e.cfg))
	return e
}

// startWorker runs a worker until the end of the test (or until stop).
func (e *env) startWorker() (w *Worker, stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(e.t)).Level(zerolog.WarnLevel)
	w, err := Start(ctx, e.cfg, log, Options{})
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = w.Shutdown()
			cancel()
		}
	}
	e.t.Cleanup(stop)
	return w, stop
}

func (e *env) submit(o tasks.SubmitOptions) *tasks.Request {
	e.t.Helper()
	r, err := e.subm.Submit(context.Background(), o)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// wait polls a request until it ends (aggregated over children).
func (e *env) wait(id string, timeout time.Duration) *tasks.Status {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.reqs.Status(context.Background(), id)
		if err == nil && st.State().Terminal() {
			return st
		}
		if time.Now().After(deadline) {
			if st != nil {
				e.t.Fatalf("request %s still %s after %v: %+v", id, st.State(), timeout, st.Request)
			}
			e.t.Fatalf("request %s: %v after %v", id, err, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) scans(inst, node string) int { return e.sim.Stats().Scans[dcssim.ScanKey(inst, node)] }

func single() tasks.SubmitOptions {
	return tasks.SubmitOptions{InstanceID: dcssim.SingleInstanceID, NodeID: dcssim.SingleNodeID, Origin: tasks.OriginCLI}
}
