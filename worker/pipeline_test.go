package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testenv"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

func TestPipelineSuccessStoresSnapshotAndDiff(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	w, _ := e.StartWorker()
	first := e.Wait(e.Submit(testenv.Single()).ID, time.Minute)
	if first.State() != tasks.StateDone {
		t.Fatalf("first request: %+v", first.Request)
	}
	r := first.Request
	if r.JobID == "" || r.Polls < 1 || r.CompletionPath != tasks.PathShowJob || r.SnapshotID != r.ID || r.Count != 250 {
		t.Errorf("request record: %+v", r)
	}
	states := []string{}
	for _, ev := range first.Events {
		states = append(states, string(ev.State))
	}
	if got := strings.Join(states, ","); got != "queued,scanning,polling,fetching,done" {
		t.Errorf("events %s", got)
	}
	snap, err := w.Store().Get(context.Background(), dcssim.SingleInstanceID, dcssim.SingleNodeID, r.SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Count != 250 || len(snap.Clients) != 250 || snap.Summary.Total != 250 || snap.Diff != nil ||
		snap.Job.ID != r.JobID || snap.Job.CompletionPath != tasks.PathShowJob || snap.Request.Origin != tasks.OriginCLI ||
		snap.DCSTime.IsZero() || snap.FetchedAt.Before(snap.DCSTime.Add(-time.Second)) {
		t.Errorf("snapshot: count %d summary %+v diff %v job %+v", snap.Count, snap.Summary.Total, snap.Diff, snap.Job)
	}
	// JSON carries the DCS field names.
	b, _ := json.Marshal(snap)
	for _, f := range []string{`"qbuf_free"`, `"addr"`, `"idle"`, `"completion_path"`, `"requested_at"`} {
		if !strings.Contains(string(b), f) {
			t.Errorf("snapshot JSON lacks %s", f)
		}
	}
	second := e.Wait(e.Submit(testenv.Single()).ID, time.Minute)
	snap2, err := w.Store().Latest(context.Background(), dcssim.SingleInstanceID, dcssim.SingleNodeID)
	if err != nil || snap2.ID != second.Request.ID {
		t.Fatalf("latest %v, %v", snap2, err)
	}
	if snap2.Diff == nil || snap2.Diff.PreviousID != snap.ID || snap2.Diff.NewCount == 0 || snap2.Diff.GoneCount == 0 {
		t.Errorf("diff against the previous snapshot: %+v", snap2.Diff)
	}
	h, _ := w.Store().History(context.Background(), dcssim.SingleInstanceID, dcssim.SingleNodeID, 10)
	if len(h) != 2 || e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID) != 2 {
		t.Errorf("history %d entries, %d scans", len(h), e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID))
	}
}

func TestSlowJobManyPolls(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: 7 * time.Second})
	e.StartWorker()
	st := e.Wait(e.Submit(testenv.Single()).ID, time.Minute)
	if st.State() != tasks.StateDone || st.Request.Polls < 4 {
		t.Fatalf("slow job: state %s after %d polls", st.State(), st.Request.Polls)
	}
}

func TestJobFailArchivesWithReason(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{Faults: dcssim.Faults{FailShare: 1, FailReason: "node unreachable"}})
	e.StartWorker()
	st := e.Wait(e.Submit(testenv.Single()).ID, time.Minute)
	if st.State() != tasks.StateFailed || !strings.Contains(st.Request.Error, "node unreachable") ||
		st.Request.ErrorClass != "job_failed" {
		t.Fatalf("request %+v", st.Request)
	}
	requireArchived(e, st.Request.ID, "node unreachable")
}

func TestPermanentErrorsEndAtOnce(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	e.StartWorker()
	for _, tc := range []struct {
		inst, node, code string
	}{
		{dcssim.Redis3InstanceID, dcssim.Redis3NodeID, "DCS.4848"},
		{dcssim.SingleInstanceID, dcssim.HAMasterNodeID, "DCS.3053"},
		{"99999999-9999-4999-8999-999999999999", dcssim.SingleNodeID, "DCS.3022"},
	} {
		st := e.Wait(e.Submit(tasks.SubmitOptions{InstanceID: tc.inst, NodeID: tc.node}).ID, 30*time.Second)
		if st.State() != tasks.StateFailed || st.Request.ErrorCode != tc.code || st.Request.ErrorClass != "permanent" ||
			!strings.Contains(st.Request.Error, tc.code) {
			t.Errorf("%s: %+v", tc.code, st.Request)
		}
		requireArchived(e, st.Request.ID, tc.code)
	}
	if n := e.Sim.Stats().OpStatuses[dcssim.OpScanClients][400] + e.Sim.Stats().OpStatuses[dcssim.OpScanClients][404]; n != 3 {
		t.Errorf("%d rejected scans, want exactly 3 (no retries of permanent errors)", n)
	}
}

func TestJobsEndpointNotKnowingTheJobFallsBackToListTime(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{Faults: dcssim.Faults{JobsUnknown: true}, JobDuration: 3 * time.Second})
	w, _ := e.StartWorker()
	st := e.Wait(e.Submit(testenv.Single()).ID, time.Minute)
	if st.State() != tasks.StateDone || st.Request.CompletionPath != tasks.PathListTime {
		t.Fatalf("request %+v", st.Request)
	}
	snap, err := w.Store().Latest(context.Background(), dcssim.SingleInstanceID, dcssim.SingleNodeID)
	if err != nil || snap.Job.CompletionPath != results.CompletedByListTime || snap.Count != 250 {
		t.Fatalf("snapshot %v %v", snap, err)
	}
}

func TestThrottlingStormIsNotAFailure(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{Faults: dcssim.Faults{RateLimit: 3, RateBurst: 2, RetryAfter: 1}})
	e.StartWorker()
	var ids []string
	for _, n := range []string{dcssim.ClusterNode1ID, dcssim.ClusterNode2ID, dcssim.ClusterNode3ID, dcssim.ClusterNode4ID,
		dcssim.ClusterNode5ID, dcssim.ClusterNode6ID} {
		ids = append(ids, e.Submit(tasks.SubmitOptions{InstanceID: dcssim.ClusterInstanceID, NodeID: n}).ID)
	}
	for _, id := range ids {
		if st := e.Wait(id, 2*time.Minute); st.State() != tasks.StateDone {
			t.Errorf("request %s: %+v", id, st.Request)
		}
	}
	if n := e.Sim.Stats().Statuses[429]; n == 0 {
		t.Fatal("the storm produced no 429")
	}
	// Throttling does not use up retries: asynq's failed counter stays at 0.
	insp := asynq.NewInspectorFromRedisClient(e.Redis.Client())
	for _, q := range []string{"dcs-followup", "dcs-default"} {
		if qi, err := insp.GetQueueInfo(q); err == nil && qi.FailedTotal != 0 {
			t.Errorf("queue %s counted %d failures for throttling", q, qi.FailedTotal)
		}
	}
}

func TestServerErrorBurstsAreRetried(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{Faults: dcssim.Faults{ErrorShare: 0.3, FailNext: 3}})
	e.StartWorker()
	st := e.Wait(e.Submit(testenv.Single()).ID, 2*time.Minute)
	if st.State() != tasks.StateDone {
		t.Fatalf("request %+v", st.Request)
	}
	s := e.Sim.Stats()
	if s.Statuses[500]+s.Statuses[502]+s.Statuses[503] < 3 {
		t.Errorf("statuses %v: the bursts did not happen", s.Statuses)
	}
	if n := e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID); n != 1 {
		t.Errorf("%d scans for one request", n)
	}
}

func TestDuplicateConcurrentRequestsShareOneScan(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: 3 * time.Second})
	e.StartWorker()
	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); ids[i] = e.Submit(testenv.Single()).ID }()
	}
	wg.Wait()
	snaps := map[string]bool{}
	for _, id := range ids {
		st := e.Wait(id, time.Minute)
		if st.State() != tasks.StateDone {
			t.Fatalf("request %s: %+v", id, st.Request)
		}
		snaps[st.Request.SnapshotID] = true
	}
	if n := e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID); n != 1 || len(snaps) != 1 {
		t.Fatalf("%d scans and %d distinct snapshots for 6 concurrent requests, want 1 and 1", n, len(snaps))
	}
}

func TestAllNodesRequest(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	e.StartWorker()
	st := e.Wait(e.Submit(tasks.SubmitOptions{InstanceID: dcssim.ProxyInstanceID, AllNodes: true}).ID, time.Minute)
	if st.State() != tasks.StateDone || len(st.Children) != 2 {
		t.Fatalf("all nodes of the proxy instance: %s, %d children", st.State(), len(st.Children))
	}
	for _, c := range st.Children {
		if c.Parent != st.Request.ID || c.State != tasks.StateDone {
			t.Errorf("child %+v", c)
		}
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: time.Hour})
	e.Cfg.Deadline = 4 * time.Second
	e.StartWorker()
	st := e.Wait(e.Submit(testenv.Single()).ID, time.Minute)
	if st.State() != tasks.StateFailed || !strings.Contains(st.Request.Error, "job did not finish within 4s") {
		t.Fatalf("request %+v", st.Request)
	}
}

func TestMalformedTaskIsArchivedWithReason(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	e.StartWorker()
	c := asynq.NewClientFromRedisClient(e.Redis.Client())
	for i, payload := range []string{`{"request_id":`, `{"request_id":"a/b"}`, `{"request_id":"x","extra":1}`, `{"request_id":"nope"}`} {
		_, err := c.Enqueue(asynq.NewTask(tasks.TypeScan, []byte(payload)), asynq.Queue("dcs-default"),
			asynq.TaskID(fmt.Sprintf("bad-%d", i)), asynq.MaxRetry(5))
		if err != nil {
			t.Fatal(err)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(e.Redis.Client())
	deadline := time.Now().Add(20 * time.Second)
	for {
		archived, _ := insp.ListArchivedTasks("dcs-default")
		if len(archived) == 4 {
			for _, a := range archived {
				if a.Retried != 0 || !(strings.Contains(a.LastErr, "malformed") || strings.Contains(a.LastErr, "not found")) {
					t.Errorf("archived %s after %d retries: %s", a.ID, a.Retried, a.LastErr)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 4 malformed tasks archived", len(archived))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTwoWorkersShareTheQueue(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: 2 * time.Second})
	e.StartWorker()
	e.StartWorker()
	nodes := []string{dcssim.ClusterNode1ID, dcssim.ClusterNode2ID, dcssim.ClusterNode3ID, dcssim.ClusterNode4ID,
		dcssim.ClusterNode5ID, dcssim.ClusterNode6ID}
	var ids []string
	for round := 0; round < 3; round++ {
		for _, n := range nodes {
			ids = append(ids, e.Submit(tasks.SubmitOptions{InstanceID: dcssim.ClusterInstanceID, NodeID: n}).ID)
		}
	}
	leaders := map[string]bool{}
	for _, id := range ids {
		st := e.Wait(id, 2*time.Minute)
		if st.State() != tasks.StateDone {
			t.Fatalf("request %s: %+v", id, st.Request)
		}
		leaders[st.Request.SnapshotID] = true
	}
	total := 0
	for _, n := range e.Sim.Stats().Scans {
		total += n
	}
	if total != len(leaders) {
		t.Errorf("%d DCS scans for %d distinct snapshots: a scan was duplicated", total, len(leaders))
	}
	if len(leaders) < len(nodes) {
		t.Errorf("only %d snapshots for %d nodes", len(leaders), len(nodes))
	}
}

func TestRedisRestartLosesNothing(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: 4 * time.Second})
	e.StartWorker()
	ids := []string{e.Submit(testenv.Single()).ID,
		e.Submit(tasks.SubmitOptions{InstanceID: dcssim.HAInstanceID, NodeID: dcssim.HASlaveNodeID}).ID}
	time.Sleep(1500 * time.Millisecond) // scans started, polls pending
	e.Redis.Restart(2 * time.Second)
	for _, id := range ids {
		if st := e.Wait(id, 2*time.Minute); st.State() != tasks.StateDone {
			t.Errorf("request %s after a Redis restart: %+v", id, st.Request)
		}
	}
	if n := e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID); n != 1 {
		t.Errorf("%d scans", n)
	}
}

// requireArchived checks that a task of the request was archived with a
// reason containing want.
func requireArchived(e *testenv.Env, reqID, want string) {
	e.T.Helper()
	insp := asynq.NewInspectorFromRedisClient(e.Redis.Client())
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, q := range []string{"dcs-followup", "dcs-default"} {
			archived, _ := insp.ListArchivedTasks(q)
			for _, a := range archived {
				if strings.Contains(string(a.Payload), reqID) && strings.Contains(a.LastErr, want) {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.T.Errorf("no archived task of request %s with %q", reqID, want)
}
