package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/config"
	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testredis"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// params are the knobs shared by both sides.
type params struct {
	N           int           // requests (and nodes)
	Concurrency int           // asynq Concurrency of both servers
	JobDuration time.Duration // simulated DCS job duration ("instant")
	Fsync       string        // redis-server appendfsync
	ChainResult string        // what the chain stores: the JSON as zstd, gzip or json
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func paramsFromEnv(defN int) params {
	p := params{N: envInt("BENCH_N", defN), Concurrency: envInt("BENCH_CONCURRENCY", 20),
		JobDuration: time.Duration(envInt("BENCH_JOB_MS", 2)) * time.Millisecond, Fsync: os.Getenv("BENCH_FSYNC")}
	switch p.ChainResult = os.Getenv("BENCH_CHAIN_RESULT"); p.ChainResult {
	case "zstd", "gzip", "json":
	default:
		p.ChainResult = "zstd"
	}
	switch p.Fsync {
	case "always", "everysec", "no":
	default:
		p.Fsync = "everysec"
	}
	return p
}

func (p params) environ() []string {
	return []string{"BENCH_N=" + strconv.Itoa(p.N), "BENCH_CONCURRENCY=" + strconv.Itoa(p.Concurrency),
		"BENCH_JOB_MS=" + strconv.Itoa(int(p.JobDuration/time.Millisecond)), "BENCH_FSYNC=" + p.Fsync, "BENCH_CHAIN_RESULT=" + p.ChainResult}
}

// target is one node a request scans.
type target struct{ Instance, Node string }

const nodesPerInstance = 100

// benchInventory has n scannable nodes (cluster instances of up to 100 nodes,
// masters and replicas alternating, 200-400 sessions each), so that every
// request gets a node of its own: the pipeline runs at most one scan per
// node and attaches concurrent requests to it, and DCS refuses a second scan
// of a busy node, so requests sharing nodes would not compare like with like.
func benchInventory(n int) (*dcssim.Inventory, []target) {
	inv := &dcssim.Inventory{}
	var ts []target
	for i := 0; len(ts) < n; i++ {
		in := dcssim.Instance{ID: fmt.Sprintf("b%07x-0000-4000-8000-000000000000", i), Name: fmt.Sprintf("bench-%d", i),
			EngineVersion: "6.0", CacheMode: "cluster", Capacity: 64, MaxClients: 10000}
		for j := 0; j < nodesPerInstance && len(ts) < n; j++ {
			k := len(ts)
			sessions := 200 + (k*53)%201
			typ := "master"
			if j%2 == 1 {
				typ = "slave"
			}
			nd := dcssim.Node{ID: fmt.Sprintf("b%07x-%04x-4000-8000-%012x", i, j/2+1, k), Type: typ, Sessions: &sessions}
			in.Nodes = append(in.Nodes, nd)
			ts = append(ts, target{Instance: in.ID, Node: nd.ID})
		}
		inv.Instances = append(inv.Instances, in)
	}
	return inv, ts
}

// storageInventory has one node with 10,000 sessions.
const (
	storageInstance = "c0000000-0000-4000-8000-000000000000"
	storageNode     = "c0000000-0001-4000-8000-000000000001"
	storageSessions = 10_000
)

func storageInventory() *dcssim.Inventory {
	s := storageSessions
	return &dcssim.Inventory{Instances: []dcssim.Instance{{ID: storageInstance, CacheMode: "single", EngineVersion: "5.0",
		Nodes: []dcssim.Node{{ID: storageNode, Type: "master", Sessions: &s}}}}}
}

// startSim serves a simulator over httptest until the end of the test.
func startSim(tb testing.TB, inv *dcssim.Inventory, jobDuration time.Duration) (*dcssim.Server, string) {
	tb.Helper()
	sim, err := dcssim.New(dcssim.Config{Inventory: inv, Seed: 1, JobDuration: jobDuration})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	tb.Cleanup(func() { srv.Close(); sim.Close() })
	return sim, srv.URL
}

func startRedis(tb testing.TB, p params) *testredis.Server {
	return testredis.Start(tb, "--appendfsync", p.Fsync)
}

// workerConfig is the worker's production defaults (concurrency, queue
// weights, poll schedule, retries), pointed at the simulator, without the
// shared API budget (the chain has none either) and without the HTTP server.
func workerConfig(p params, redisURL, simURL string) *config.Config {
	return &config.Config{
		RedisURL: dcsapi.Secret(redisURL), KeyPrefix: "dcsjobs", DCSEndpoint: simURL,
		ProjectID: dcssim.DefaultProjectID, AccessKey: dcssim.DefaultAK, SecretKey: dcsapi.Secret(dcssim.DefaultSK),
		DCSTimeout: 30 * time.Second, HTTPAddr: "", Concurrency: p.Concurrency,
		Weights:   config.Weights{Followup: 6, Trigger: 4, Default: 3, Schedule: 1},
		PollFirst: 0, PollNext: time.Second, PollFactor: 1.5, PollMax: 30 * time.Second, Deadline: 10 * time.Minute,
		MaxRetry: 8, Retention: time.Hour, HistoryMax: 100, IdleThreshold: 10 * time.Minute,
		LogLevel: "warn", LogFormat: "json",
	}
}

// queuePriorities are the asynq queues (and weights) of both sides.
func queuePriorities() map[string]int { return tasks.Queues{}.Priorities(6, 4, 3, 1) }

// waitDrained waits until no asynq queue holds a pending, active, scheduled
// or retry task: every request has then ended (each task enqueues its
// follow-up before it is acknowledged). It reads only list lengths, so it
// hardly loads Redis.
func waitDrained(ctx context.Context, rdb *redis.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var cmds []*redis.IntCmd
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for q := range queuePriorities() {
				pre := "asynq:{" + q + "}:"
				cmds = append(cmds, p.LLen(ctx, pre+"pending"), p.LLen(ctx, pre+"active"),
					p.ZCard(ctx, pre+"scheduled"), p.ZCard(ctx, pre+"retry"))
			}
			return nil
		})
		if err != nil {
			return err
		}
		total := int64(0)
		for _, c := range cmds {
			total += c.Val()
		}
		if total == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d tasks still queued after %v", total, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procStatusKB reads a "Vm..." field of /proc/self/status in kB (0 if absent).
func procStatusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the redis-server's user+system CPU time so far.
func redisCPU(ctx context.Context, rdb *redis.Client) time.Duration {
	txt, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, l := range strings.Split(txt, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

func redisInfoInt(ctx context.Context, rdb *redis.Client, section, field string) int64 {
	txt, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(txt, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == field {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// lineCounter counts log lines (warnings and errors of a side) and keeps the
// first few.
type lineCounter struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (c *lineCounter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if len(c.first) < 5 {
		c.first = append(c.first, strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func (c *lineCounter) snapshot() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, append([]string(nil), c.first...)
}
