package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/worker"
)

// sideResult is what one side measured.
type sideResult struct {
	Side   string `json:"side"`
	N      int    `json:"n"`
	Done   int    `json:"done"`
	Failed int    `json:"failed"`
	// SubmitSec is the time to submit all N requests; WallSec is from the
	// first submission to the last stored result.
	SubmitSec float64 `json:"submit_sec"`
	WallSec   float64 `json:"wall_sec"`
	// LatencyMS per done request: stored result minus the DCS job's end_time.
	LatencyMS []float64 `json:"latency_ms"`
	// MultiPoll counts requests that needed more than one job poll.
	MultiPoll int `json:"multi_poll"`
	// ResultBytes is the total size of the stored results (the pipeline's
	// encoded snapshots, the chain's JSON).
	ResultBytes int64 `json:"result_bytes"`
	// PeakRSSKB is VmHWM of the process that ran the side (without the
	// simulator unless in process); GoCPUSec (that process) and RedisCPUSec
	// are CPU seconds from the first submission to the end.
	PeakRSSKB      int64    `json:"peak_rss_kb"`
	GoCPUSec       float64  `json:"go_cpu_sec"`
	RedisCPUSec    float64  `json:"redis_cpu_sec"`
	RedisPeakBytes int64    `json:"redis_peak_bytes"`
	LogLines       int      `json:"log_lines"`
	Errors         []string `json:"errors,omitempty"`
	// Runs is how many runs were merged into this result.
	Runs int `json:"runs"`
}

// merge adds the run o to r (nil: o alone): rates over the sum of the runs'
// times, latencies pooled, peaks the largest.
func (r *sideResult) merge(o *sideResult) *sideResult {
	o.Runs = max(o.Runs, 1)
	if r == nil {
		return o
	}
	r.Runs += o.Runs
	r.N += o.N
	r.Done += o.Done
	r.Failed += o.Failed
	r.SubmitSec += o.SubmitSec
	r.WallSec += o.WallSec
	r.LatencyMS = append(r.LatencyMS, o.LatencyMS...)
	r.MultiPoll += o.MultiPoll
	r.ResultBytes += o.ResultBytes
	r.PeakRSSKB = max(r.PeakRSSKB, o.PeakRSSKB)
	r.GoCPUSec += o.GoCPUSec
	r.RedisCPUSec += o.RedisCPUSec
	r.RedisPeakBytes = max(r.RedisPeakBytes, o.RedisPeakBytes)
	r.LogLines += o.LogLines
	r.Errors = append(r.Errors, o.Errors...)[:min(len(r.Errors)+len(o.Errors), 5)]
	return r
}

func (r *sideResult) reqPerSec() float64 {
	if r.WallSec <= 0 {
		return 0
	}
	return float64(r.Done) / r.WallSec
}

// runPipeline runs N requests through the real worker (worker.Start), one
// node per request, and reads the outcome from the request records.
func runPipeline(tb testing.TB, p params, simURL string) *sideResult {
	tb.Helper()
	ctx := context.Background()
	_, targets := benchInventory(p.N)
	rs := startRedis(tb, p)
	rdb := rs.Client()
	logs := &lineCounter{}
	w, err := worker.Start(ctx, workerConfig(p, rs.URL(), simURL), zerolog.New(logs).Level(zerolog.WarnLevel), worker.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = w.Shutdown() }()
	// Requests are submitted through a client of their own, as by cmd/enqueue
	// or another service, not through the worker's connection pool.
	cfg := workerConfig(p, rs.URL(), simURL)
	subRdb := rs.Client()
	subm := tasks.NewSubmitter(asynq.NewClientFromRedisClient(subRdb),
		tasks.NewRequests(subRdb, cfg.KeyPrefix, cfg.Retention), worker.PipelineConfig(cfg))
	reqs := w.Requests()

	res := &sideResult{Side: "pipeline", N: p.N}
	cpu0, rcpu0 := cpuTime(), redisCPU(ctx, rdb)
	ids := make([]string, len(targets))
	start := time.Now()
	for i, t := range targets {
		ids[i] = fmt.Sprintf("bench%05d", i)
		if _, err := subm.Submit(ctx, tasks.SubmitOptions{InstanceID: t.Instance, NodeID: t.Node,
			Origin: tasks.OriginCLI, ID: ids[i]}); err != nil {
			tb.Fatalf("submit %d: %v", i, err)
		}
	}
	res.SubmitSec = time.Since(start).Seconds()
	if err := waitDrained(ctx, rdb, 5*time.Minute); err != nil {
		tb.Fatal(err)
	}
	res.GoCPUSec, res.RedisCPUSec = (cpuTime() - cpu0).Seconds(), (redisCPU(ctx, rdb) - rcpu0).Seconds()

	var last time.Time
	for _, id := range ids {
		r, err := reqs.Get(ctx, id)
		if err != nil {
			tb.Fatal(err)
		}
		if r.State != tasks.StateDone {
			res.Failed++
			if len(res.Errors) < 5 {
				res.Errors = append(res.Errors, fmt.Sprintf("%s: %s %s", id, r.State, r.Error))
			}
			continue
		}
		res.Done++
		// UpdatedAt is set by the transition to done, right after the
		// snapshot was stored; JobEnd is ShowJobInfo's end_time.
		if r.UpdatedAt.After(last) {
			last = r.UpdatedAt
		}
		res.LatencyMS = append(res.LatencyMS, float64(r.UpdatedAt.Sub(r.JobEnd))/float64(time.Millisecond))
		if r.Polls > 1 {
			res.MultiPoll++
		}
		if m, err := w.Store().LatestSummary(ctx, r.InstanceID, r.NodeID); err == nil {
			res.ResultBytes += int64(m.SizeBytes)
		}
	}
	res.WallSec = last.Sub(start).Seconds()
	res.RedisPeakBytes = redisInfoInt(ctx, rdb, "memory", "used_memory_peak")
	res.LogLines, _ = logs.snapshot()
	if _, first := logs.snapshot(); len(first) > 0 && len(res.Errors) < 5 {
		res.Errors = append(res.Errors, first...)
	}
	return res
}
