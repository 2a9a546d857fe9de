package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/klauspost/compress/zstd"
	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/dcssim"
)

// The plain chain: what one would write without request records, scan locks
// or snapshots. Each task enqueues the next; none is a prefix of another. The
// result is the session list as JSON, zstd-compressed by default so that it
// is of a size similar to the pipeline's encoded snapshot
// (BENCH_CHAIN_RESULT=json stores it raw, about 20 times larger; gzip uses
// compress/gzip, about 1.5 ms per 300 sessions).
const (
	chainScan  = "chain:scan"
	chainPoll  = "chain:poll"
	chainFetch = "chain:fetch"
)

type chainPayload struct {
	ID       string `json:"id"`
	Instance string `json:"instance"`
	Node     string `json:"node"`
	JobID    string `json:"job_id,omitempty"`
	Poll     int    `json:"poll,omitempty"`
	JobEndMS int64  `json:"job_end_ms,omitempty"`
}

// chainZstd compresses the chain's results (EncodeAll is safe for
// concurrent use).
var chainZstd, _ = zstd.NewWriter(nil)

type chainDone struct {
	jobEnd, at time.Time
	polls      int
	bytes      int
}

type chain struct {
	dcs      *dcsapi.Client
	q        *asynq.Client
	rdb      *redis.Client
	followup string
	result   string // zstd, gzip or json: see params.ChainResult
	mu       sync.Mutex
	done     map[string]chainDone
	failed   []string
}

func (c *chain) next(ctx context.Context, typ string, p chainPayload, delay time.Duration) error {
	b, _ := json.Marshal(p)
	opts := []asynq.Option{asynq.Queue(c.followup), asynq.MaxRetry(8), asynq.Timeout(5 * time.Minute)}
	if delay > 0 {
		opts = append(opts, asynq.ProcessIn(delay))
	}
	_, err := c.q.EnqueueContext(ctx, asynq.NewTask(typ, b), opts...)
	return err
}

func decodeChain(t *asynq.Task) (chainPayload, error) {
	var p chainPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return p, fmt.Errorf("%w: %v", asynq.SkipRetry, err)
	}
	return p, nil
}

func (c *chain) scan(ctx context.Context, t *asynq.Task) error {
	p, err := decodeChain(t)
	if err != nil {
		return err
	}
	if p.JobID, err = c.dcs.ScanClients(ctx, p.Instance, p.Node, false); err != nil {
		return err
	}
	p.Poll = 1
	return c.next(ctx, chainPoll, p, 0)
}

func (c *chain) poll(ctx context.Context, t *asynq.Task) error {
	p, err := decodeChain(t)
	if err != nil {
		return err
	}
	job, err := c.dcs.ShowJobInfo(ctx, p.JobID)
	switch {
	case err != nil:
		return err
	case job.Status == dcsapi.JobSuccess:
		p.JobEndMS = job.EndTime.UnixMilli()
		return c.next(ctx, chainFetch, p, 0)
	case job.Status == dcsapi.JobFail:
		c.fail(p.ID, "job failed: "+job.FailReason)
		return fmt.Errorf("%w: job %s failed", asynq.SkipRetry, p.JobID)
	}
	p.Poll++
	return c.next(ctx, chainPoll, p, time.Second)
}

func (c *chain) fetch(ctx context.Context, t *asynq.Task) error {
	p, err := decodeChain(t)
	if err != nil {
		return err
	}
	list, err := c.dcs.ListAllClients(ctx, p.Instance, p.Node, dcsapi.ListClientsOptions{})
	if err != nil {
		return err
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	switch c.result {
	case "zstd":
		b = chainZstd.EncodeAll(b, nil)
	case "gzip":
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		if err := zw.Close(); err != nil {
			return err
		}
		b = buf.Bytes()
	}
	if err := c.rdb.Set(ctx, "chain:result:"+p.ID, b, time.Hour).Err(); err != nil {
		return err
	}
	at := time.Now()
	c.mu.Lock()
	c.done[p.ID] = chainDone{jobEnd: time.UnixMilli(p.JobEndMS), at: at, polls: p.Poll, bytes: len(b)}
	c.mu.Unlock()
	return nil
}

func (c *chain) fail(id, msg string) {
	c.mu.Lock()
	c.failed = append(c.failed, id+": "+msg)
	c.mu.Unlock()
}

// quietLogger drops asynq's own log lines but counts them.
type quietLogger struct{ c *lineCounter }

func (l quietLogger) log(lvl string, args ...any) {
	_, _ = l.c.Write([]byte(lvl + " " + fmt.Sprint(args...)))
}
func (l quietLogger) Debug(args ...any) {}
func (l quietLogger) Info(args ...any)  {}
func (l quietLogger) Warn(args ...any)  { l.log("warn", args...) }
func (l quietLogger) Error(args ...any) { l.log("error", args...) }
func (l quietLogger) Fatal(args ...any) { l.log("fatal", args...) }

// runChain runs N requests through the plain chain with the worker's asynq
// server settings and DCS client setup.
func runChain(tb testing.TB, p params, simURL string) *sideResult {
	tb.Helper()
	ctx := context.Background()
	_, targets := benchInventory(p.N)
	rs := startRedis(tb, p)
	// One client for the queue and the results, as the worker has.
	rdb := rs.Client()
	dcs, err := dcsapi.New(dcsapi.Config{Endpoint: simURL, ProjectID: dcssim.DefaultProjectID,
		Auth: &dcsapi.AKSK{AccessKey: dcssim.DefaultAK, SecretKey: dcsapi.Secret(dcssim.DefaultSK)}, Timeout: 30 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	c := &chain{dcs: dcs, q: asynq.NewClientFromRedisClient(rdb), rdb: rdb, followup: "dcs-followup",
		result: p.ChainResult,
		done:   map[string]chainDone{}}
	logs := &lineCounter{}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              p.Concurrency,
		Queues:                   queuePriorities(),
		TaskCheckInterval:        100 * time.Millisecond,
		DelayedTaskCheckInterval: time.Second,
		ShutdownTimeout:          10 * time.Second,
		HealthCheckInterval:      5 * time.Second,
		Logger:                   quietLogger{logs},
		LogLevel:                 asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(chainScan, c.scan)
	mux.HandleFunc(chainPoll, c.poll)
	mux.HandleFunc(chainFetch, c.fetch)
	if err := srv.Start(mux); err != nil {
		tb.Fatal(err)
	}
	defer srv.Shutdown()

	// Requests are submitted through a client of their own (see runPipeline).
	submit := asynq.NewClientFromRedisClient(rs.Client())
	res := &sideResult{Side: "chain", N: p.N}
	cpu0, rcpu0 := cpuTime(), redisCPU(ctx, rdb)
	start := time.Now()
	for i, t := range targets {
		b, _ := json.Marshal(chainPayload{ID: fmt.Sprintf("bench%05d", i), Instance: t.Instance, Node: t.Node})
		if _, err := submit.EnqueueContext(ctx, asynq.NewTask(chainScan, b), asynq.Queue("dcs-default"),
			asynq.MaxRetry(8), asynq.Timeout(5*time.Minute)); err != nil {
			tb.Fatalf("submit %d: %v", i, err)
		}
	}
	res.SubmitSec = time.Since(start).Seconds()
	if err := waitDrained(ctx, rdb, 5*time.Minute); err != nil {
		tb.Fatal(err)
	}
	res.GoCPUSec, res.RedisCPUSec = (cpuTime() - cpu0).Seconds(), (redisCPU(ctx, rdb) - rcpu0).Seconds()

	c.mu.Lock()
	defer c.mu.Unlock()
	var last time.Time
	for _, d := range c.done {
		res.Done++
		if d.at.After(last) {
			last = d.at
		}
		res.LatencyMS = append(res.LatencyMS, float64(d.at.Sub(d.jobEnd))/float64(time.Millisecond))
		if d.polls > 1 {
			res.MultiPoll++
		}
		res.ResultBytes += int64(d.bytes)
	}
	res.Failed = p.N - res.Done
	res.Errors = append(res.Errors, c.failed[:min(len(c.failed), 5)]...)
	res.WallSec = last.Sub(start).Seconds()
	res.RedisPeakBytes = redisInfoInt(ctx, rdb, "memory", "used_memory_peak")
	var first []string
	res.LogLines, first = logs.snapshot()
	if len(first) > 0 && len(res.Errors) < 5 {
		res.Errors = append(res.Errors, first...)
	}
	return res
}
