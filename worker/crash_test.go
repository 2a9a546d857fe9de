package worker_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testenv"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// These tests SIGKILL a worker process in the middle of a request and start
// another: asynq re-runs the killed task after its lease expires (about a
// minute), and the request must still end exactly once, with one DCS scan and
// one stored result. They take 1-2 minutes each and run in parallel.

var (
	buildOnce sync.Once
	workerBin string
	buildErr  error
	buildOut  []byte
)

func buildWorker(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dcsjobs-worker-bin")
		if err != nil {
			buildErr = err
			return
		}
		workerBin = filepath.Join(dir, "worker")
		buildOut, buildErr = exec.Command("go", "build", "-o", workerBin, "../cmd/worker").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build worker: %v\n%s", buildErr, buildOut)
	}
	return workerBin
}

// proc is a worker running as a separate process.
type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startProcess(e *testenv.Env) *proc {
	e.T.Helper()
	cmd := exec.Command(buildWorker(e.T), "-log-format", "json", "-log-level", "info")
	cmd.Env = append(os.Environ(),
		"REDIS_URL="+e.Redis.URL(), "DCS_ENDPOINT="+e.SimURL,
		"HUAWEICLOUD_SDK_PROJECT_ID="+dcssim.DefaultProjectID, "HUAWEICLOUD_SDK_AK="+dcssim.DefaultAK,
		"HUAWEICLOUD_SDK_SK="+dcssim.DefaultSK, "HTTP_ADDR=127.0.0.1:0", "POLL_FIRST=0s", "POLL_NEXT=1s", "POLL_MAX=2s",
		"POLL_FACTOR=1.2", "JOB_DEADLINE=5m", "DCS_TIMEOUT=30s", "DCS_API_BUDGET=200/s")
	p := &proc{cmd: cmd, out: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if e.T.Failed() {
			e.T.Logf("worker pid %d output:\n%s", cmd.Process.Pid, p.out.String())
		}
	})
	return p
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// until polls cond every 50ms for up to d.
func until(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func state(e *testenv.Env, id string) *tasks.Request {
	r, err := e.Reqs.Get(context.Background(), id)
	if err != nil {
		return &tasks.Request{}
	}
	return r
}

func requireOneResult(e *testenv.Env, id string) {
	e.T.Helper()
	st := e.Wait(id, 4*time.Minute)
	if st.State() != tasks.StateDone {
		e.T.Fatalf("request %s after the crash: %+v", id, st.Request)
	}
	if n := e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID); n != 1 {
		e.T.Errorf("%d DCS scans for one request across a crash, want 1", n)
	}
	store := results.NewStore(e.Redis.Client(), results.StoreOptions{Prefix: e.Cfg.KeyPrefix})
	h, err := store.History(context.Background(), dcssim.SingleInstanceID, dcssim.SingleNodeID, 10)
	if err != nil || len(h) != 1 || h[0].ID != id {
		e.T.Errorf("history after the crash: %d entries (%v), want exactly the one result", len(h), err)
	}
}

func TestCrashMidScan(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for asynq's lease recovery (about a minute)")
	}
	t.Parallel()
	// ScanClients hangs for 4s: the worker is killed while the call is in
	// flight; the simulator still starts the scan (the response is lost).
	e := testenv.New(t, dcssim.Config{JobDuration: 2 * time.Second,
		Faults: dcssim.Faults{Ops: []string{dcssim.OpScanClients}, Latency: dcssim.Duration(4 * time.Second)}})
	a := startProcess(e)
	id := e.Submit(testenv.Single()).ID
	until(t, 30*time.Second, "the scan call", func() bool { return state(e, id).State == tasks.StateScanning })
	time.Sleep(time.Second)
	a.kill(t)
	if err := e.Sim.SetFaults(dcssim.Faults{}); err != nil {
		t.Fatal(err)
	}
	startProcess(e)
	requireOneResult(e, id)
	st, _ := e.Reqs.Status(context.Background(), id)
	if st.Request.CompletionPath != tasks.PathListTime {
		t.Errorf("completion path %q: the re-run should have watched the list time, not scanned again", st.Request.CompletionPath)
	}
}

func TestCrashMidPoll(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for asynq's lease recovery (about a minute)")
	}
	t.Parallel()
	// Every ShowJobInfo takes 3s: the worker is killed inside a poll.
	e := testenv.New(t, dcssim.Config{JobDuration: 8 * time.Second,
		Faults: dcssim.Faults{Ops: []string{dcssim.OpShowJobInfo}, Latency: dcssim.Duration(3 * time.Second)}})
	a := startProcess(e)
	id := e.Submit(testenv.Single()).ID
	until(t, 30*time.Second, "the second poll", func() bool { return state(e, id).Polls >= 2 })
	time.Sleep(time.Second)
	a.kill(t)
	if n := e.Sim.Stats().Calls[dcssim.OpListClients]; n != 0 {
		t.Fatalf("killed too late: %d ListClients calls", n)
	}
	startProcess(e)
	requireOneResult(e, id)
	st, _ := e.Reqs.Status(context.Background(), id)
	if st.Request.CompletionPath != tasks.PathShowJob || st.Request.JobID == "" {
		t.Errorf("request %+v", st.Request)
	}
}

func TestCrashMidFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for asynq's lease recovery (about a minute)")
	}
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: time.Second,
		Faults: dcssim.Faults{Ops: []string{dcssim.OpListClients}, Latency: dcssim.Duration(3 * time.Second)}})
	a := startProcess(e)
	id := e.Submit(testenv.Single()).ID
	until(t, 30*time.Second, "the fetch", func() bool { return state(e, id).State == tasks.StateFetching })
	time.Sleep(time.Second)
	a.kill(t)
	if err := e.Sim.SetFaults(dcssim.Faults{}); err != nil {
		t.Fatal(err)
	}
	startProcess(e)
	requireOneResult(e, id)
}

// SIGTERM lets the running poll finish, exits 0, and another worker carries
// the request on without a second scan.
func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: 8 * time.Second,
		Faults: dcssim.Faults{Ops: []string{dcssim.OpShowJobInfo}, Latency: dcssim.Duration(2 * time.Second)}})
	a := startProcess(e)
	id := e.Submit(testenv.Single()).ID
	until(t, 30*time.Second, "the first poll", func() bool { return state(e, id).Polls >= 1 })
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("worker exit after SIGTERM: %v\n%s", err, a.out.String())
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if !bytes.Contains(a.out.Bytes(), []byte("stopped")) {
		t.Errorf("no shutdown log line:\n%s", a.out.String())
	}
	startProcess(e)
	st := e.Wait(id, 2*time.Minute)
	if st.State() != tasks.StateDone || e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID) != 1 {
		t.Fatalf("after a graceful restart: %+v, %d scans", st.Request, e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID))
	}
}
