package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/dcsjobs/dcsjobs/dcssim"
)

// Targets of the issue.
const (
	targetRatio     = 0.8  // pipeline req/s at least 0.8× the chain's
	targetP50MS     = 1000 // p50 result latency after the job's end
	targetStoredPct = 15   // stored bytes under 15% of the JSON
)

// defaultN is the number of requests per run (two runs per side): about 7 s
// a run on 2 cores, long enough to smooth out the noise of a shared VM.
const defaultN = 1000

// BenchmarkPipelineVsChain runs BENCH_N requests (default 1000) twice end to end
// through the worker and through a plain asynq chain, then one 10,000-session
// request for the storage figure. One iteration is the whole comparison; use
// -benchtime 1x.
func BenchmarkPipelineVsChain(b *testing.B) {
	p := paramsFromEnv(defaultN)
	inProc := os.Getenv("BENCH_INPROC") != ""
	for i := 0; i < b.N; i++ {
		rep := runAll(b, p, inProc)
		b.Log("\n" + rep.table())
		if !testing.Verbose() {
			// go test shows at most 10 lines of a benchmark's log without -v.
			fmt.Print(rep.table())
		}
		if i == b.N-1 {
			rep.reportMetrics(b)
		}
	}
}

// TestPipelineVsChainSmoke keeps the benchmark from rotting: a few requests
// per side (in child processes, as the benchmark runs them), every one done.
func TestPipelineVsChainSmoke(t *testing.T) {
	p := paramsFromEnv(20)
	p.N = min(p.N, 20)
	rep := runAll(t, p, false)
	t.Log("\n" + rep.table())
	for _, s := range []*sideResult{rep.Pipeline, rep.Chain} {
		if s.Done != s.N || s.N != p.N*s.Runs || s.Failed != 0 {
			t.Errorf("%s: %d of %d done, %d failed: %v", s.Side, s.Done, s.N, s.Failed, s.Errors)
		}
		if s.reqPerSec() <= 0 || len(s.LatencyMS) != s.Done || s.PeakRSSKB <= 0 || s.ResultBytes <= 0 {
			t.Errorf("%s: incomplete figures: %+v", s.Side, s)
		}
	}
	if pct := rep.Storage.pct(); !(pct > 0 && pct < 100) {
		t.Errorf("stored snapshot is %.1f%% of its JSON", pct)
	}
}

// TestBenchChild is the child process of runAll: it runs one side and writes
// its result as JSON to BENCH_CHILD_OUT. It skips unless started by runAll.
func TestBenchChild(t *testing.T) {
	side, out, simURL := os.Getenv("BENCH_CHILD_SIDE"), os.Getenv("BENCH_CHILD_OUT"), os.Getenv("BENCH_SIM_URL")
	if side == "" || out == "" || simURL == "" {
		t.Skip("helper process of BenchmarkPipelineVsChain")
	}
	p := paramsFromEnv(defaultN)
	var r *sideResult
	switch side {
	case "pipeline":
		r = runPipeline(t, p, simURL)
	case "chain":
		r = runChain(t, p, simURL)
	default:
		t.Fatalf("unknown side %q", side)
	}
	r.PeakRSSKB = procStatusKB("VmHWM")
	b, _ := json.Marshal(r)
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runChild runs one side in a fresh process of this test binary, so that its
// peak RSS and CPU are its own (the simulator stays in this process).
func runChild(tb testing.TB, side string, p params, simURL string) *sideResult {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), side+".json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(append(os.Environ(), p.environ()...), "BENCH_CHILD_SIDE="+side, "BENCH_CHILD_OUT="+out,
		"BENCH_SIM_URL="+simURL)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s side: %v\n%s", side, err, logs.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatalf("%s side wrote no result: %v\n%s", side, err, logs.String())
	}
	var r sideResult
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatal(err)
	}
	return &r
}

type report struct {
	P        params
	Pipeline *sideResult
	Chain    *sideResult
	Storage  storageResult
	// ProcRSSKB is VmHWM of this process at the end: the simulators and the
	// storage run, and both sides when in process.
	ProcRSSKB int64
	InProc    bool
	// Runs lists each run in order with its rate.
	Runs []string
}

// benchOrder is the order of the runs: pipeline, chain, chain, pipeline by
// default, so that a drift of the machine during the benchmark (the second
// run of a pair was measured slower) weighs on both sides alike.
// BENCH_ORDER overrides it with a comma-separated list of sides.
func benchOrder() []string {
	if v := os.Getenv("BENCH_ORDER"); v != "" {
		out := strings.Split(v, ",")
		if slices.Contains(out, "pipeline") && slices.Contains(out, "chain") &&
			!slices.ContainsFunc(out, func(s string) bool { return s != "pipeline" && s != "chain" }) {
			return out
		}
	}
	return []string{"pipeline", "chain", "chain", "pipeline"}
}

// runAll runs the sides in benchOrder (each run in a child process unless
// inProc), then the storage measurement in this process.
func runAll(tb testing.TB, p params, inProc bool) *report {
	tb.Helper()
	rep := &report{P: p, InProc: inProc}
	// Each side gets its own simulator (same config and inventory), served
	// from this process; Reset after each run frees the simulator's sessions,
	// so that no run works next to an earlier run's heap, and makes a repeated
	// run start from the same state.
	inv, _ := benchInventory(p.N)
	pipeSim, pipeURL := startSim(tb, inv, p.JobDuration)
	chainSim, chainURL := startSim(tb, inv, p.JobDuration)
	sims := map[string]struct {
		sim *dcssim.Server
		url string
	}{"pipeline": {pipeSim, pipeURL}, "chain": {chainSim, chainURL}}
	// A short discarded run of each side first: the first run on a cold
	// machine (page cache, CPU frequency, a fresh simulator) was measured up
	// to 40% slower than later ones, whichever side it was.
	// (Not for the smoke test's few requests.)
	warm := p
	warm.N = p.N / 5
	for _, side := range []string{"pipeline", "chain"} {
		if warm.N < 20 {
			break
		}
		if inProc && side == "pipeline" {
			runPipeline(tb, warm, pipeURL)
		} else if inProc {
			runChain(tb, warm, chainURL)
		} else {
			runChild(tb, side, warm, sims[side].url)
		}
		sims[side].sim.Reset()
	}
	for _, side := range benchOrder() {
		var r *sideResult
		switch {
		case inProc && side == "pipeline":
			r = runPipeline(tb, p, pipeURL)
		case inProc:
			r = runChain(tb, p, chainURL)
		default:
			r = runChild(tb, side, p, sims[side].url)
		}
		sims[side].sim.Reset()
		runtime.GC()
		if side == "pipeline" {
			rep.Pipeline = rep.Pipeline.merge(r)
		} else {
			rep.Chain = rep.Chain.merge(r)
		}
		rep.Runs = append(rep.Runs, fmt.Sprintf("%s %.1f req/s", side, r.reqPerSec()))
	}
	rep.Storage = measureStorage(tb, p)
	rep.ProcRSSKB = procStatusKB("VmHWM")
	if inProc {
		rep.Pipeline.PeakRSSKB, rep.Chain.PeakRSSKB = 0, 0
	}
	return rep
}

// percentile is the nearest-rank percentile of xs (0 when empty).
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (r *report) ratio() float64 {
	if c := r.Chain.reqPerSec(); c > 0 {
		return r.Pipeline.reqPerSec() / c
	}
	return 0
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

func (r *report) peakRSSMB() float64 {
	if r.InProc {
		return mb(r.ProcRSSKB)
	}
	return mb(max(r.Pipeline.PeakRSSKB, r.Chain.PeakRSSKB))
}

func (r *report) reportMetrics(b *testing.B) {
	b.ReportMetric(r.Pipeline.reqPerSec(), "pipeline_req/s")
	b.ReportMetric(r.Chain.reqPerSec(), "chain_req/s")
	b.ReportMetric(r.ratio(), "ratio")
	b.ReportMetric(percentile(r.Pipeline.LatencyMS, 0.50), "p50_ms")
	b.ReportMetric(percentile(r.Pipeline.LatencyMS, 0.99), "p99_ms")
	b.ReportMetric(percentile(r.Chain.LatencyMS, 0.50), "chain_p50_ms")
	b.ReportMetric(percentile(r.Chain.LatencyMS, 0.99), "chain_p99_ms")
	b.ReportMetric(r.Storage.pct(), "stored_%_of_json")
	b.ReportMetric(r.peakRSSMB(), "peak_rss_MB")
	if !r.InProc {
		b.ReportMetric(mb(r.Pipeline.PeakRSSKB), "pipeline_rss_MB")
		b.ReportMetric(mb(r.Chain.PeakRSSKB), "chain_rss_MB")
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// table is the human-readable report.
func (r *report) table() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "N=%d requests per run, one node each (200-400 sessions), job duration %v, concurrency %d, "+
		"redis appendfsync %s, chain stores %s, sides %s\n", r.P.N, r.P.JobDuration, r.P.Concurrency, r.P.Fsync, r.P.ChainResult,
		map[bool]string{true: "in this process", false: "in child processes"}[r.InProc])
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tpipeline\tchain\t")
	row := func(name, format string, f func(s *sideResult) any) {
		fmt.Fprintf(tw, "%s\t"+format+"\t"+format+"\t\n", name, f(r.Pipeline), f(r.Chain))
	}
	row("done / failed", "%s", func(s *sideResult) any { return fmt.Sprintf("%d / %d", s.Done, s.Failed) })
	row("runs", "%d", func(s *sideResult) any { return s.Runs })
	row("submit all N (s, per run)", "%.2f", func(s *sideResult) any { return s.SubmitSec / float64(s.Runs) })
	row("first submit → last result (s, per run)", "%.2f", func(s *sideResult) any { return s.WallSec / float64(s.Runs) })
	row("requests/s", "%.1f", func(s *sideResult) any { return s.reqPerSec() })
	row("result latency after job end p50 (ms)", "%.0f", func(s *sideResult) any { return percentile(s.LatencyMS, .5) })
	row("  p90 (ms)", "%.0f", func(s *sideResult) any { return percentile(s.LatencyMS, .9) })
	row("  p99 (ms)", "%.0f", func(s *sideResult) any { return percentile(s.LatencyMS, .99) })
	row("  max (ms)", "%.0f", func(s *sideResult) any { return percentile(s.LatencyMS, 1) })
	row("requests polled more than once", "%d", func(s *sideResult) any { return s.MultiPoll })
	row("result bytes per request", "%.0f", func(s *sideResult) any { return float64(s.ResultBytes) / float64(max(s.Done, 1)) })
	row("worker/chain CPU ms per request", "%.2f", func(s *sideResult) any { return 1000 * s.GoCPUSec / float64(max(s.Done, 1)) })
	row("redis CPU ms per request", "%.2f", func(s *sideResult) any { return 1000 * s.RedisCPUSec / float64(max(s.Done, 1)) })
	row("redis used_memory_peak (MB)", "%.1f", func(s *sideResult) any { return float64(s.RedisPeakBytes) / (1 << 20) })
	if !r.InProc {
		row("peak RSS of the side's process (MB)", "%.1f", func(s *sideResult) any { return mb(s.PeakRSSKB) })
	}
	row("warning/error log lines", "%d", func(s *sideResult) any { return s.LogLines })
	_ = tw.Flush()
	st := r.Storage
	fmt.Fprintf(&sb, "runs in order: %s\n", strings.Join(r.Runs, ", "))
	fmt.Fprintf(&sb, "ratio pipeline/chain: %.2f (target >= %.1f: %s)\n", r.ratio(), targetRatio, verdict(r.ratio() >= targetRatio))
	p50 := percentile(r.Pipeline.LatencyMS, .5)
	fmt.Fprintf(&sb, "pipeline p50 result latency after job SUCCESS: %.0f ms (target < %d ms: %s)\n", p50, targetP50MS, verdict(p50 < targetP50MS))
	fmt.Fprintf(&sb, "%d-session snapshot: stored %d bytes (+%d meta; redis MEMORY USAGE %d) vs JSON %d bytes = %.1f%% "+
		"(target < %d%%: %s); the bare session list's JSON (what the chain stores) is %d bytes\n",
		st.Sessions, st.BlobBytes, st.MetaBytes, st.RedisBytes, st.JSONBytes, st.pct(), targetStoredPct,
		verdict(st.pct() < targetStoredPct), st.ListJSONBytes)
	if r.InProc {
		fmt.Fprintf(&sb, "peak RSS (VmHWM) of this process, both sides and the simulators: %.1f MB\n", mb(r.ProcRSSKB))
	} else {
		fmt.Fprintf(&sb, "peak RSS: %.1f MB (the larger side's process, without the simulator and redis-server); "+
			"the harness process with both simulators and the storage run peaked at %.1f MB\n", r.peakRSSMB(), mb(r.ProcRSSKB))
	}
	for _, s := range []*sideResult{r.Pipeline, r.Chain} {
		for _, e := range s.Errors {
			fmt.Fprintf(&sb, "%s: %s\n", s.Side, e)
		}
	}
	return sb.String()
}
