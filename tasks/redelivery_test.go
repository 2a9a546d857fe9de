package tasks

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// stubDCS counts calls; every call answers err (nil: a fixed success).
type stubDCS struct {
	mu    sync.Mutex
	scans int
	err   error
}

func (d *stubDCS) ScanClients(context.Context, string, string, bool) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.scans++
	return "job-1", d.err
}
func (d *stubDCS) ShowJobInfo(context.Context, string) (*dcsapi.Job, error) {
	if d.err != nil {
		return nil, d.err
	}
	return &dcsapi.Job{Status: dcsapi.JobRunning}, nil
}
func (d *stubDCS) ListClients(context.Context, string, string, dcsapi.ListClientsOptions) (*dcsapi.ClientList, error) {
	return nil, d.err
}
func (d *stubDCS) ListAllClients(context.Context, string, string, dcsapi.ListClientsOptions) (*dcsapi.ClientList, error) {
	return nil, d.err
}
func (d *stubDCS) ScanTargets(context.Context, string) ([]dcsapi.Node, error) { return nil, d.err }
func (d *stubDCS) ShowInstance(context.Context, string) (*dcsapi.Instance, error) {
	return nil, d.err
}

// stubQueue records enqueued task ids; a repeated id is a conflict, as in asynq.
type stubQueue struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (q *stubQueue) EnqueueContext(_ context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	id := ""
	for _, o := range opts {
		if o.Type() == asynq.TaskIDOpt {
			id = o.Value().(string)
		}
	}
	if q.ids == nil {
		q.ids = map[string]bool{}
	}
	if q.ids[id] {
		return nil, asynq.ErrTaskIDConflict
	}
	q.ids[id] = true
	return &asynq.TaskInfo{ID: id, Type: t.Type()}, nil
}

func testHandlers(t *testing.T, dcs DCS) (*Handlers, *Requests, *stubQueue) {
	t.Helper()
	reqs, _ := testRequests(t)
	q := &stubQueue{}
	return NewHandlers(Deps{DCS: dcs, Enqueuer: q, Requests: reqs, Log: zerolog.Nop()}, Config{}), reqs, q
}

// A task of a leader that already ended (a crash after its terminal
// transition, before the node was released) frees the node at once instead
// of leaving it locked until the lock expires.
func TestRerunOfEndedLeaderReleasesTheNode(t *testing.T) {
	t.Parallel()
	h, reqs, _ := testHandlers(t, &stubDCS{})
	ctx := context.Background()
	if _, err := reqs.Create(ctx, &Request{ID: "lead", InstanceID: "i", NodeID: "n", Origin: OriginCLI}); err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessScan(ctx, newTask(TypeScan, Payload{RequestID: "lead"})); err != nil {
		t.Fatal(err)
	}
	if _, err := reqs.apply(ctx, "lead", change{state: StateDone, terminal: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessFetch(ctx, newTask(TypeFetch, Payload{RequestID: "lead"})); err != nil {
		t.Fatal(err)
	}
	if cur, _ := reqs.InFlight(ctx, "i", "n"); cur != "" {
		t.Errorf("node still held by %q after the ended leader's task ran again", cur)
	}
}

// A scan task of an attached request that runs again (redelivered after its
// poll chain started) must not make the request a leader of its own: that
// started a second DCS scan while its polls still followed the old leader.
func TestScanRerunOfAttachedRequestDoesNotScan(t *testing.T) {
	t.Parallel()
	dcs := &stubDCS{}
	h, reqs, q := testHandlers(t, dcs)
	ctx := context.Background()
	for _, id := range []string{"lead", "follow"} {
		if _, err := reqs.Create(ctx, &Request{ID: id, InstanceID: "i", NodeID: "n", Origin: OriginCLI}); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(id string) error { return h.ProcessScan(ctx, newTask(TypeScan, Payload{RequestID: id})) }
	if err := scan("lead"); err != nil {
		t.Fatal(err)
	}
	if err := scan("follow"); err != nil {
		t.Fatal(err)
	}
	if r, _ := reqs.Get(ctx, "follow"); r.State != StateAttached || r.Leader != "lead" {
		t.Fatalf("follower %+v, want attached to lead", r)
	}
	// The leader ends and frees the node; then the follower's scan task runs again.
	if _, err := reqs.apply(ctx, "lead", change{state: StateDone, terminal: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := reqs.release(ctx, "i", "n", "lead"); err != nil {
		t.Fatal(err)
	}
	if err := scan("follow"); err != nil {
		t.Fatal(err)
	}
	if dcs.scans != 1 {
		t.Errorf("%d DCS scans, want 1", dcs.scans)
	}
	if r, _ := reqs.Get(ctx, "follow"); r.Leader != "lead" {
		t.Errorf("follower now led by %q, want lead", r.Leader)
	}
	if !q.ids[pollTaskID("follow", 1)] {
		t.Error("the follower's poll chain was not kept going")
	}
}

// A throttled call on a task's last attempt ends the request: asynq archives
// a task whose retries are used up whatever the error, so returning the
// throttle error there left the request in no terminal state. (Outside asynq
// the context carries no retry counts, which reads as the last attempt.)
func TestThrottledOnLastAttemptEndsTheRequest(t *testing.T) {
	t.Parallel()
	h, reqs, _ := testHandlers(t, &stubDCS{err: &dcsapi.ThrottleError{Op: dcsapi.OpShowJobInfo, Delay: time.Second, Reason: "test"}})
	ctx := context.Background()
	r := &Request{ID: "r", InstanceID: "i", NodeID: "n", Origin: OriginCLI}
	if _, err := reqs.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := reqs.apply(ctx, "r", change{state: StatePolling, set: map[string]string{
		"leader": "r", "job_id": "job-1", "scan_at": ms(time.Now()), "completion_path": PathShowJob}}); err != nil {
		t.Fatal(err)
	}
	err := h.ProcessPoll(ctx, newTask(TypePoll, Payload{RequestID: "r", Poll: 1}))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessPoll = %v, want SkipRetry", err)
	}
	if got, _ := reqs.Get(ctx, "r"); got.State != StateFailed {
		t.Errorf("request %s, want failed", got.State)
	}
}

// A poll task that runs again after its request moved to fetching (a crash
// before the task was acknowledged) only makes sure the fetch is queued: it
// must not fail the request on the deadline while the fetch runs.
func TestPollRerunAfterFetchingStarted(t *testing.T) {
	t.Parallel()
	h, reqs, q := testHandlers(t, &stubDCS{})
	ctx := context.Background()
	if _, err := reqs.Create(ctx, &Request{ID: "r", InstanceID: "i", NodeID: "n", Origin: OriginCLI}); err != nil {
		t.Fatal(err)
	}
	if _, err := reqs.apply(ctx, "r", change{state: StateFetching, set: map[string]string{"polls": "4",
		"leader": "r", "job_id": "job-1", "scan_at": ms(time.Now().Add(-time.Hour)), "completion_path": PathShowJob}}); err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessPoll(ctx, newTask(TypePoll, Payload{RequestID: "r", Poll: 4})); err != nil {
		t.Errorf("ProcessPoll = %v", err)
	}
	if got, _ := reqs.Get(ctx, "r"); got.State != StateFetching {
		t.Errorf("request %s, want fetching", got.State)
	}
	if !q.ids[fetchTaskID("r")] {
		t.Error("fetch not enqueued")
	}
}
