package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/dcsjobs/dcsjobs/config"
	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testenv"
	"github.com/dcsjobs/dcsjobs/internal/testredis"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/worker"
)

// Scale-out: the whole worker on a 3-master Redis Cluster and on a
// Sentinel-managed master that fails over mid-run, and several worker
// processes sharing one Redis under one API budget. Every Redis here is a
// real redis-server started by the test (package testredis).
// TestCapacityFigures (DCSJOBS_CAPACITY=1) measures the README's capacity
// guidance; it is a measurement, not a timed test.

// syncBuf is a log sink safe for concurrent writes and reads.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLoggedWorker runs an in-process worker whose info-level log goes to a
// buffer (shown when the test fails), so the test can read what it logged.
func startLoggedWorker(t *testing.T, cfg *config.Config, name string) (*worker.Worker, *syncBuf) {
	t.Helper()
	buf := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	c := *cfg
	w, err := worker.Start(ctx, &c, zerolog.New(buf).Level(zerolog.InfoLevel).With().Timestamp().Logger(), worker.Options{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.Shutdown()
		cancel()
		if t.Failed() {
			t.Logf("worker %s log:\n%s", name, buf.String())
		}
	})
	return w, buf
}

// useRedis points an Env (its workers, submitter and request store) at
// another Redis than its private redis-server.
func useRedis(e *testenv.Env, url string, rdb redis.UniversalClient) {
	e.Cfg.RedisURL = dcsapi.Secret(url)
	e.Reqs = tasks.NewRequests(rdb, e.Cfg.KeyPrefix, e.Cfg.Retention)
	e.Subm = tasks.NewSubmitter(asynq.NewClientFromRedisClient(rdb), e.Reqs, worker.PipelineConfig(e.Cfg))
}

// crossSlotMarks are what Redis answers when a command or a script spans
// hash slots: "CROSSSLOT Keys in request don't hash to the same slot", and
// for scripts "Script attempted to access a non local key in a cluster node"
// or "... keys that do not hash to the same slot".
var crossSlotMarks = []string{"CROSSSLOT", "non local key", "do not hash to the same slot"}

func requireNoCrossSlot(t *testing.T, logs ...*syncBuf) {
	t.Helper()
	errs, warns := 0, 0
	for _, l := range logs {
		for _, line := range strings.Split(l.String(), "\n") {
			for _, m := range crossSlotMarks {
				if strings.Contains(line, m) {
					t.Errorf("cross-slot error logged: %s", line)
				}
			}
			if strings.Contains(line, `"level":"error"`) {
				errs++
			}
			if strings.Contains(line, `"level":"warn"`) {
				warns++
			}
		}
	}
	t.Logf("%d error and %d warning lines in the workers' logs, none cross-slot", errs, warns)
}

// manyNodes is the default inventory plus one cluster instance (id prefix
// "abcd00NN") with n nodes of the given sessions and job duration.
func manyNodes(inst, n, sessions int, job time.Duration) (*dcssim.Inventory, []string, string) {
	inv := dcssim.DefaultInventory()
	id := fmt.Sprintf("abcd%04d-0000-4000-8000-000000000000", inst)
	in := dcssim.Instance{ID: id, CacheMode: "cluster", EngineVersion: "6.0"}
	var nodes []string
	for i := range n {
		typ := "master"
		if i%2 == 1 {
			typ = "slave"
		}
		s := sessions
		nd := dcssim.Node{ID: fmt.Sprintf("abcd%04d-%04d-4000-8000-%012d", inst, i+1, i+1), Type: typ, Sessions: &s,
			JobDuration: dcssim.Duration(job)}
		in.Nodes = append(in.Nodes, nd)
		nodes = append(nodes, nd.ID)
	}
	inv.Instances = append(inv.Instances, in)
	return inv, nodes, id
}

func waitDone(t *testing.T, e *testenv.Env, ids []string, d time.Duration) map[string]*tasks.Status {
	t.Helper()
	out := map[string]*tasks.Status{}
	for _, id := range ids {
		st := e.Wait(id, d)
		if st.State() != tasks.StateDone {
			t.Fatalf("request %s ended %s: %+v", id, st.State(), st.Request)
		}
		out[id] = st
	}
	return out
}

func TestClusterPipelineResultsAuditsMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-master Redis Cluster and runs audits for ~10s")
	}
	t.Parallel()
	cl := testredis.StartCluster(t, 3)
	rdb := cl.Client()
	e := testenv.New(t, dcssim.Config{JobDuration: time.Second})
	useRedis(e, cl.URL(), rdb)
	path := filepath.Join(t.TempDir(), "audits.yml")
	writeAudits(t, path, fmt.Sprintf(`audits:
  - name: scale
    instance: %s
    nodes: [%s, %s]
    schedule: "@every 2s"
`, dcssim.ClusterInstanceID, dcssim.ClusterNode1ID, dcssim.ClusterNode2ID))
	e.Cfg.AuditConfig = path
	a, logA := startLoggedWorker(t, e.Cfg, "a")
	_, logB := startLoggedWorker(t, e.Cfg, "b")
	ctx := context.Background()

	// Duplicate concurrent requests for one node: one scan.
	dup := make([]string, 6)
	var wg sync.WaitGroup
	for i := range dup {
		wg.Add(1)
		go func() { defer wg.Done(); dup[i] = e.Submit(testenv.Single()).ID }()
	}
	wg.Wait()
	all := e.Submit(tasks.SubmitOptions{InstanceID: dcssim.ProxyInstanceID, AllNodes: true}).ID
	ha := e.Submit(tasks.SubmitOptions{InstanceID: dcssim.HAInstanceID, NodeID: dcssim.HASlaveNodeID, Origin: tasks.OriginTrigger}).ID
	sts := waitDone(t, e, append(slices.Clone(dup), all, ha), time.Minute)
	snaps := map[string]bool{}
	for _, id := range dup {
		snaps[sts[id].Request.SnapshotID] = true
	}
	if n := e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID); n != 1 || len(snaps) != 1 {
		t.Errorf("%d scans and %d snapshots for 6 concurrent requests of one node, want 1 and 1", n, len(snaps))
	}
	if c := sts[all].Children; len(c) != 2 || c[0].State != tasks.StateDone || c[1].State != tasks.StateDone {
		t.Errorf("all-nodes request: %+v", c)
	}

	// Results: history and latest, through a cluster client of our own.
	store := results.NewStore(rdb, results.StoreOptions{Prefix: e.Cfg.KeyPrefix})
	h, err := store.History(ctx, dcssim.SingleInstanceID, dcssim.SingleNodeID, 10)
	if err != nil || len(h) != 1 || !snaps[h[0].ID] || h[0].Count != 250 {
		t.Errorf("history of the single node: %+v, %v", h, err)
	}
	for _, n := range []string{dcssim.ProxyNode1ID, dcssim.ProxyNode2ID} {
		if s, err := store.Latest(ctx, dcssim.ProxyInstanceID, n); err != nil || s.Count == 0 || !strings.HasPrefix(s.ID, all) {
			t.Errorf("latest of proxy %s: %v", n, err)
		}
	}
	if s, err := a.Store().Latest(ctx, dcssim.HAInstanceID, dcssim.HASlaveNodeID); err != nil || s.ID != ha || s.Count != 40 {
		t.Errorf("latest of the HA replica through the worker's store: %v", err)
	}

	// Scheduled audits: two schedulers, one request and one scan per slot.
	auditIDs := func() map[string][]string {
		keys, err := cl.Keys(ctx, e.Cfg.KeyPrefix+":{r:a_scale_*}")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, k := range keys {
			id := strings.TrimSuffix(strings.TrimPrefix(k, e.Cfg.KeyPrefix+":{r:"), "}")
			parts := strings.SplitN(id, "_", 4)
			out[parts[3]] = append(out[parts[3]], id)
		}
		return out
	}
	until(t, 30*time.Second, "three audit slots per node", func() bool {
		ids := auditIDs()
		return len(ids[dcssim.ClusterNode1ID]) >= 3 && len(ids[dcssim.ClusterNode2ID]) >= 3
	})
	for _, node := range []string{dcssim.ClusterNode1ID, dcssim.ClusterNode2ID} {
		// The audit keeps ticking: compare once no slot started between
		// listing the requests and reading the scan count.
		for try := 0; ; try++ {
			ids := auditIDs()[node]
			waitDone(t, e, ids, time.Minute)
			scans := e.Scans(dcssim.ClusterInstanceID, node)
			if again := auditIDs()[node]; len(again) != len(ids) && try < 5 {
				continue
			}
			if scans != len(ids) {
				t.Errorf("node %s: %d scans for %d audit slots (two schedulers must not double a slot)", node, scans, len(ids))
			}
			break
		}
	}

	// Metrics: session gauges (read from the cluster) and asynq's queue gauges.
	until(t, 15*time.Second, "session and queue gauges on /metrics", func() bool {
		_, f := scrape(t, a.HTTPAddr())
		v, ok := value(f, "dcsjobs_node_sessions", map[string]string{"instance_id": dcssim.SingleInstanceID, "node_id": dcssim.SingleNodeID})
		_, okQ := value(f, "asynq_queue_size", map[string]string{"queue": "dcs-default"})
		_, okT := value(f, "asynq_queue_tasks", map[string]string{"queue": "dcs-followup", "state": "completed"})
		up, _ := value(f, "dcsjobs_store_up", nil)
		return ok && v == 250 && okQ && okT && up == 1
	})

	// What the project wrote: every key of a node or a request carries its
	// hash tag; the few others are single keys used alone.
	keys, err := cl.Keys(ctx, "*")
	if err != nil {
		t.Fatal(err)
	}
	families := map[string]int{}
	for _, k := range keys {
		f := k
		switch {
		case strings.HasPrefix(k, "asynq:"):
			f = "asynq:*"
		case strings.Contains(k, "{n:"):
			f = e.Cfg.KeyPrefix + ":{n:<instance>:<node>}" + k[strings.Index(k, "}")+1:]
			if i := strings.LastIndex(f, ":"); strings.Contains(f, ":snap:") || strings.Contains(f, ":meta:") {
				f = f[:i+1] + "<id>"
			}
		case strings.Contains(k, "{r:"):
			f = e.Cfg.KeyPrefix + ":{r:<id>}" + k[strings.Index(k, "}")+1:]
		case strings.HasPrefix(k, e.Cfg.KeyPrefix+":instance:"):
			f = e.Cfg.KeyPrefix + ":instance:<id>"
		}
		families[f]++
	}
	t.Logf("keys written, by family: %v", families)
	per, _ := cl.KeysPerMaster(ctx)
	t.Logf("keys per master: %v", per)
	requireNoCrossSlot(t, logA, logB)
}

func TestSentinelPipelineAndFailoverLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Sentinel failover under load")
	}
	t.Parallel()
	g := testredis.StartSentinel(t)
	inv, nodes, inst := manyNodes(1, 14, 120, 5*time.Second)
	e := testenv.New(t, dcssim.Config{Inventory: inv, JobDuration: time.Second})
	useRedis(e, g.URL(), g.Client())
	_, logA := startLoggedWorker(t, e.Cfg, "a")
	b, logB := startLoggedWorker(t, e.Cfg, "b")
	ctx := context.Background()

	// The pipeline, as on a single server.
	dup := []string{e.Submit(testenv.Single()).ID, e.Submit(testenv.Single()).ID, e.Submit(testenv.Single()).ID}
	all := e.Submit(tasks.SubmitOptions{InstanceID: dcssim.ProxyInstanceID, AllNodes: true}).ID
	sts := waitDone(t, e, append(slices.Clone(dup), all), time.Minute)
	if n := e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID); n != 1 || sts[dup[1]].Request.SnapshotID != sts[dup[0]].Request.SnapshotID {
		t.Errorf("%d scans for 3 concurrent requests of one node", n)
	}
	if s, err := b.Store().Latest(ctx, dcssim.SingleInstanceID, dcssim.SingleNodeID); err != nil || s.ID != sts[dup[0]].Request.SnapshotID {
		t.Errorf("latest snapshot: %v", err)
	}

	// 20 requests on 14 nodes with 5 s jobs; the master fails over while
	// their scans and polls are in flight, and more requests come after.
	var ids []string
	for i := range 14 {
		ids = append(ids, e.Submit(tasks.SubmitOptions{InstanceID: inst, NodeID: nodes[i]}).ID)
	}
	until(t, 30*time.Second, "scans under way", func() bool {
		n := 0
		for _, id := range ids {
			if s := state(e, id).State; s == tasks.StatePolling || s == tasks.StateAttached {
				n++
			}
		}
		return n >= 7
	})
	old := g.Master()
	start := time.Now()
	next := g.Failover()
	t.Logf("failover %s → %s in %v", old.Addr(), next.Addr(), time.Since(start))
	for i := range 6 {
		ids = append(ids, e.Submit(tasks.SubmitOptions{InstanceID: inst, NodeID: nodes[i*2]}).ID)
	}
	sts = waitDone(t, e, ids, 2*time.Minute)
	leaders := map[string]map[string]bool{}
	for _, id := range ids {
		r := sts[id].Request
		if r.SnapshotID == "" {
			t.Errorf("request %s done without a snapshot", id)
		}
		if leaders[r.NodeID] == nil {
			leaders[r.NodeID] = map[string]bool{}
		}
		leaders[r.NodeID][r.SnapshotID] = true
	}
	for _, n := range nodes {
		scans := e.Scans(inst, n)
		if scans != len(leaders[n]) {
			t.Errorf("node %s: %d DCS scans for %d distinct snapshots", n, scans, len(leaders[n]))
		}
		// Every snapshot survived the failover in the new master's history.
		h, err := b.Store().History(ctx, inst, n, 10)
		if err != nil || len(h) != len(leaders[n]) {
			t.Errorf("node %s: history of %d (%v), want %d", n, len(h), err, len(leaders[n]))
		}
	}
	requireNoCrossSlot(t, logA, logB)
}

// procLog is a worker process with its log.
type procLog struct {
	cmd *exec.Cmd
	log *syncBuf
}

// startWorkerProcess runs the built worker binary against the given
// environment (REDIS_URL, DCS_ENDPOINT, budget...), logging JSON at level.
func startWorkerProcess(t *testing.T, level string, env ...string) *procLog {
	t.Helper()
	cmd := exec.Command(buildWorker(t), "-log-format", "json", "-log-level", level)
	cmd.Env = append(os.Environ(),
		"HUAWEICLOUD_SDK_PROJECT_ID="+dcssim.DefaultProjectID, "HUAWEICLOUD_SDK_AK="+dcssim.DefaultAK,
		"HUAWEICLOUD_SDK_SK="+dcssim.DefaultSK, "HTTP_ADDR=127.0.0.1:0", "POLL_FIRST=0s", "POLL_NEXT=1s", "POLL_MAX=2s",
		"POLL_FACTOR=1.2", "JOB_DEADLINE=5m", "DCS_TIMEOUT=30s", "AUDIT_CONFIG=", "TRIGGER_TOKEN=", "TRIGGER_TOKEN_FILE=")
	cmd.Env = append(cmd.Env, env...) // the last value of a variable wins
	p := &procLog{cmd: cmd, log: &syncBuf{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("worker pid %d output:\n%s", cmd.Process.Pid, p.log.String())
		}
	})
	return p
}

// waitServers waits until n asynq servers have registered in Redis.
func waitServers(t *testing.T, rdb redis.UniversalClient, n int) {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	until(t, 60*time.Second, strconv.Itoa(n)+" worker processes up", func() bool {
		s, err := insp.Servers()
		return err == nil && len(s) >= n
	})
}

// callTimes records when each DCS API call reached the simulator.
type callTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (c *callTimes) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.at = append(c.at, time.Now())
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// maxInWindow is the most calls that arrived within any window of length d.
func (c *callTimes) maxInWindow(d time.Duration) (n int, at time.Time) {
	c.mu.Lock()
	ts := slices.Clone(c.at)
	c.mu.Unlock()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	j := 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= d {
			j++
		}
		if i-j+1 > n {
			n, at = i-j+1, ts[j]
		}
	}
	return n, at
}

// Three worker processes share one Redis and the budget "20/s" with burst 5.
// The budget is a GCRA (redis_rate): over any window of length T it lets
// through at most burst + rate×T calls. The simulator sees a call a little
// after the budget granted it (scheduling, HTTP), which can squeeze grants
// from a slightly longer window into one second, so the check allows 250 ms of
// such jitter: at most 5 + 20×1.25 = 30 calls in any 1-second window, and
// over the whole run at most 5 + 20×(duration + 0.25 s).
func TestProcessesShareWorkUnderOneBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three worker processes for ~20 s")
	}
	t.Parallel()
	const rate, burst, jitter = 20, 5, 250 * time.Millisecond
	inv, nodes, inst := manyNodes(2, 40, 150, 0)
	e := testenv.New(t, dcssim.Config{Inventory: inv, JobDuration: time.Second})
	calls := &callTimes{}
	srv := httptest.NewServer(calls.wrap(e.Sim))
	t.Cleanup(srv.Close)
	var procs []*procLog
	for range 3 {
		procs = append(procs, startWorkerProcess(t, "info", "REDIS_URL="+e.Redis.URL(), "DCS_ENDPOINT="+srv.URL,
			"DCS_API_BUDGET="+strconv.Itoa(rate)+"/s", "DCS_API_BURST="+strconv.Itoa(burst), "CONCURRENCY=20"))
	}
	waitServers(t, e.Redis.Client(), 3)
	start := time.Now()
	var ids []string
	for i := range 60 {
		ids = append(ids, e.Submit(tasks.SubmitOptions{InstanceID: inst, NodeID: nodes[i%len(nodes)]}).ID)
	}
	sts := waitDone(t, e, ids, 2*time.Minute)
	elapsed := time.Since(start)
	snaps := map[string]bool{}
	for _, st := range sts {
		snaps[st.Request.SnapshotID] = true
	}
	total := 0
	for _, n := range e.Sim.Stats().Scans {
		total += n
	}
	if total != len(snaps) {
		t.Errorf("%d DCS scans for %d distinct snapshots: a scan was duplicated", total, len(snaps))
	}
	if len(snaps) < len(nodes) {
		t.Errorf("%d snapshots for %d nodes", len(snaps), len(nodes))
	}
	// Each process did part of the work.
	var share []int
	for _, p := range procs {
		share = append(share, strings.Count(p.log.String(), `"message":"scan started"`))
	}
	for i, n := range share {
		if n == 0 {
			t.Errorf("process %d started no scan (scans per process %v)", i, share)
		}
	}
	maxN, at := calls.maxInWindow(time.Second)
	allowed := burst + int(math.Floor(rate*(time.Second+jitter).Seconds()))
	calls.mu.Lock()
	n, span := len(calls.at), calls.at[len(calls.at)-1].Sub(calls.at[0])
	calls.mu.Unlock()
	t.Logf("60 requests in %v by 3 processes (scans per process %v): %d DCS calls over %v (%.1f/s), at most %d in one second (at %s), allowed %d",
		elapsed.Round(time.Millisecond), share, n, span.Round(time.Millisecond), float64(n)/span.Seconds(), maxN, at.Format("15:04:05.000"), allowed)
	if maxN > allowed {
		t.Errorf("%d DCS calls within one second: the budget %d/s burst %d did not hold across processes", maxN, rate, burst)
	}
	if limit := float64(burst) + rate*(span+jitter).Seconds(); float64(n) > limit {
		t.Errorf("%d calls in %v, more than burst + rate × time = %.0f", n, span, limit)
	}
	if float64(n)/span.Seconds() < rate*0.5 {
		t.Logf("note: the budget hardly bound (%.1f calls/s)", float64(n)/span.Seconds())
	}
}

// ---- capacity measurements ----

// TestCapacityFigures measures, on this machine, the figures behind the
// README's capacity guidance. It only runs with DCSJOBS_CAPACITY=1:
//
//	DCSJOBS_CAPACITY=1 go test -run TestCapacityFigures -v -count=1 ./worker
//
// (DCSJOBS_CAPACITY_N sets the requests per throughput run, default 1000.)
//
//   - requests/s with 1 and 3 worker processes (the built binary, concurrency
//     20, no API budget) on one redis-server (appendfsync everysec), instant
//     jobs, one node (250 sessions) per request; and the Redis CPU time per
//     request, whose inverse bounds requests/s per Redis core;
//   - Redis memory: MEMORY USAGE of each key of one request (snapshot, meta,
//     request record and events, asynq task hashes kept 10 minutes), of a
//     10,000-session snapshot, and used_memory growth per request;
//   - DCS calls per audited node with the default poll schedule (first poll
//     at once, 1 s, ×1.5, at most 30 s) for several job durations, and from
//     them the nodes a fleet can audit per minute within a budget.
func TestCapacityFigures(t *testing.T) {
	if os.Getenv("DCSJOBS_CAPACITY") != "1" {
		t.Skip("set DCSJOBS_CAPACITY=1 to measure the capacity figures")
	}
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("DCSJOBS_CAPACITY_N")); err == nil && v > 0 {
		n = v
	}
	buildWorker(t)
	for _, procs := range []int{1, 3} {
		t.Run(fmt.Sprintf("%dproc", procs), func(t *testing.T) { measureThroughput(t, procs, n) })
	}
	t.Run("calls", measureCallsPerAudit)
}

func redisInfo(t *testing.T, rdb *redis.Client, field string) float64 {
	t.Helper()
	txt, err := rdb.Info(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(txt, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == field {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("INFO has no %s", field)
	return 0
}

func measureThroughput(t *testing.T, procs, n int) {
	r := testredis.Start(t, "--appendfsync", "everysec")
	rdb := r.Client()
	inv, nodes, inst := manyNodes(3, n, 250, time.Millisecond)
	big := 10_000
	bigID := "abcd9999-0001-4000-8000-000000000001"
	inv.Instances = append(inv.Instances, dcssim.Instance{ID: "abcd9999-0000-4000-8000-000000000000", CacheMode: "single",
		Nodes: []dcssim.Node{{ID: bigID, Type: "master", Sessions: &big, JobDuration: dcssim.Duration(time.Millisecond)}}})
	sim, err := dcssim.New(dcssim.Config{Inventory: inv, JobDuration: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	cfg := testenv.Config(r.URL(), srv.URL)
	reqs := tasks.NewRequests(rdb, cfg.KeyPrefix, cfg.Retention)
	subm := tasks.NewSubmitter(asynq.NewClientFromRedisClient(rdb), reqs, worker.PipelineConfig(cfg))
	for range procs {
		startWorkerProcess(t, "warn", "REDIS_URL="+r.URL(), "DCS_ENDPOINT="+srv.URL, "DCS_API_BUDGET=off", "CONCURRENCY=20")
	}
	waitServers(t, rdb, procs)
	ctx := context.Background()
	mem0 := redisInfo(t, rdb, "used_memory")
	cpu0 := redisInfo(t, rdb, "used_cpu_sys") + redisInfo(t, rdb, "used_cpu_user")
	start := time.Now()
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				q, err := subm.Submit(ctx, tasks.SubmitOptions{InstanceID: inst, NodeID: nodes[i]})
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = q.ID
			}
		}()
	}
	wg.Wait()
	submitted := time.Since(start)
	pending := slices.Clone(ids)
	for len(pending) > 0 {
		left := pending[:0]
		for _, id := range pending {
			q, err := reqs.Get(ctx, id)
			if err != nil || !q.State.Terminal() {
				left = append(left, id)
			} else if q.State != tasks.StateDone {
				t.Fatalf("request %s: %+v", id, q)
			}
		}
		pending = left
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("%d requests not done after 5 minutes", len(pending))
		}
		if len(pending) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	cpu := redisInfo(t, rdb, "used_cpu_sys") + redisInfo(t, rdb, "used_cpu_user") - cpu0
	mem := redisInfo(t, rdb, "used_memory") - mem0
	st := sim.Stats()
	t.Logf("%d process(es): %d requests in %v (submitted in %v): %.0f requests/s; Redis CPU %.2f ms/request (≈ %.0f requests/s per Redis core); used_memory +%.0f bytes/request; DCS calls per request: scan %.2f, poll %.2f, list %.2f",
		procs, n, elapsed.Round(time.Millisecond), submitted.Round(time.Millisecond), float64(n)/elapsed.Seconds(),
		cpu*1000/float64(n), float64(n)/cpu, mem/float64(n), float64(st.Calls[dcssim.OpScanClients])/float64(n),
		float64(st.Calls[dcssim.OpShowJobInfo])/float64(n), float64(st.Calls[dcssim.OpListClients])/float64(n))
	if procs != 1 {
		return
	}
	// Memory of one request's keys, and of a 10,000-session snapshot.
	one := ids[0]
	keyMem := func(pattern string) (map[string]int64, int64) {
		out, sum := map[string]int64{}, int64(0)
		keys, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			b, err := rdb.MemoryUsage(ctx, k, 0).Result()
			if err != nil {
				t.Fatal(err)
			}
			out[strings.ReplaceAll(k, one, "<id>")] = b
			sum += b
		}
		return out, sum
	}
	perKey, sum := keyMem("*" + one + "*")
	t.Logf("keys of one 250-session request (MEMORY USAGE, bytes): %v; total %d", perKey, sum)
	bq, err := subm.Submit(ctx, tasks.SubmitOptions{InstanceID: "abcd9999-0000-4000-8000-000000000000", NodeID: bigID})
	if err != nil {
		t.Fatal(err)
	}
	until(t, time.Minute, "the 10,000-session request", func() bool {
		q, err := reqs.Get(ctx, bq.ID)
		return err == nil && q.State == tasks.StateDone
	})
	one = bq.ID
	perKey, sum = keyMem("*" + one + "*")
	t.Logf("keys of one 10,000-session request (MEMORY USAGE, bytes): %v; total %d", perKey, sum)
	hist, _ := rdb.MemoryUsage(ctx, cfg.KeyPrefix+":{n:"+inst+":"+nodes[0]+"}:hist", 0).Result()
	idx, _ := rdb.MemoryUsage(ctx, cfg.KeyPrefix+":nodes", 0).Result()
	t.Logf("a node's history zset with 1 entry: %d bytes; the node index (%d nodes): %d bytes (%.0f per node)",
		hist, n+1, idx, float64(idx)/float64(n+1))
}

// measureCallsPerAudit counts the DCS calls of one request with the default
// poll schedule, for several job durations and session counts, with /jobs
// knowing the scan job and not (each case on its own simulator, in parallel).
func measureCallsPerAudit(t *testing.T) {
	type kind struct {
		job      time.Duration
		sessions int
		unknown  bool
	}
	var kinds []kind
	for _, unknown := range []bool{false, true} {
		for _, k := range []kind{{time.Second, 250, false}, {2 * time.Second, 250, false}, {5 * time.Second, 250, false},
			{10 * time.Second, 250, false}, {2 * time.Second, 10_000, false}, {5 * time.Second, 10_000, false}} {
			k.unknown = unknown
			kinds = append(kinds, k)
		}
	}
	for _, k := range kinds {
		t.Run(fmt.Sprintf("job%v_%dsessions_jobsunknown%v", k.job, k.sessions, k.unknown), func(t *testing.T) {
			t.Parallel()
			s := k.sessions
			inv := &dcssim.Inventory{Instances: []dcssim.Instance{{ID: "abcd7777-0000-4000-8000-000000000000", CacheMode: "single",
				Nodes: []dcssim.Node{{ID: "abcd7777-0001-4000-8000-000000000001", Type: "master", Sessions: &s}}}}}
			e := testenv.New(t, dcssim.Config{Inventory: inv, JobDuration: k.job, Faults: dcssim.Faults{JobsUnknown: k.unknown}})
			e.Cfg.PollFirst, e.Cfg.PollNext, e.Cfg.PollFactor, e.Cfg.PollMax = 0, time.Second, 1.5, 30*time.Second
			e.Cfg.APIBudget.N = 0
			e.StartWorker()
			r := waitDone(t, e, []string{e.Submit(tasks.SubmitOptions{InstanceID: inv.Instances[0].ID,
				NodeID: inv.Instances[0].Nodes[0].ID}).ID}, 2*time.Minute)
			var req *tasks.Request
			for _, st := range r {
				req = st.Request
			}
			c := e.Sim.Stats().Calls
			total := c[dcssim.OpScanClients] + c[dcssim.OpShowJobInfo] + c[dcssim.OpListClients]
			t.Logf("CALLS job %v, %d sessions, /jobs unknown %v: %d polls (%s); ScanClients %d + ShowJobInfo %d + ListClients %d = %d calls per audited node (+ ShowInstance %d, once per instance and hour)",
				k.job, k.sessions, k.unknown, req.Polls, req.CompletionPath, c[dcssim.OpScanClients], c[dcssim.OpShowJobInfo],
				c[dcssim.OpListClients], total, c[dcssim.OpShowInstance])
			t.Logf("CALLS → nodes audited per minute within a budget of 10/s: %.0f, 20/s: %.0f, 50/s: %.0f",
				600/float64(total), 1200/float64(total), 3000/float64(total))
		})
	}
}
