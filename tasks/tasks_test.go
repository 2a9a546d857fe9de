package tasks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func TestTaskTypesAreNotPrefixesOfEachOther(t *testing.T) {
	t.Parallel()
	for _, a := range AllTypes {
		for _, b := range AllTypes {
			if a != b && strings.HasPrefix(b, a) {
				t.Errorf("%q is a prefix of %q: asynq would route %q to its handler", a, b, b)
			}
		}
	}
}

func TestPollSchedule(t *testing.T) {
	t.Parallel()
	s := PollSchedule{}
	want := []time.Duration{0, time.Second, 1500 * time.Millisecond, 2250 * time.Millisecond}
	for i, w := range want {
		if got := s.Delay(i + 1); got != w {
			t.Errorf("default Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := s.Delay(100); got != 30*time.Second {
		t.Errorf("Delay(100) = %v, want the 30s cap", got)
	}
	s = PollSchedule{First: 5 * time.Second, Next: 2 * time.Second, Factor: 2, Max: 10 * time.Second}
	for n, w := range map[int]time.Duration{1: 5 * time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second} {
		if got := s.Delay(n); got != w {
			t.Errorf("Delay(%d) = %v, want %v", n, got, w)
		}
	}
}

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for n := 0; n < 40; n++ {
		full := min(time.Second<<min(n, 20), time.Minute)
		for range 20 {
			d := b.Delay(n)
			if d < full/2 || d > full {
				t.Fatalf("Delay(%d) = %v outside [%v, %v]", n, d, full/2, full)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct delays: no jitter", len(seen))
	}
	f := RetryDelayFunc(b)
	if d := f(3, &throttledError{Delay: 7 * time.Second}, nil); d != 7*time.Second {
		t.Errorf("throttled delay %v", d)
	}
	if d := f(3, &throttledError{Delay: 10 * time.Millisecond}, nil); d != time.Second {
		t.Errorf("throttled delay below asynq's resolution: %v", d)
	}
	if IsFailure(fmt.Errorf("x: %w", &throttledError{})) || !IsFailure(errors.New("boom")) {
		t.Error("IsFailure")
	}
}

func TestDecodePayload(t *testing.T) {
	t.Parallel()
	ok := []struct{ typ, payload string }{
		{TypeScan, `{"request_id":"abc_1-2"}`},
		{TypePoll, `{"request_id":"abc","poll":3}`},
	}
	for _, c := range ok {
		if _, err := decodePayload(asynq.NewTask(c.typ, []byte(c.payload))); err != nil {
			t.Errorf("%s %s: %v", c.typ, c.payload, err)
		}
	}
	bad := []struct{ typ, payload, want string }{
		{TypeScan, ``, "malformed"},
		{TypeScan, `{"request_id":1}`, "malformed"},
		{TypeScan, `{"request_id":"a/b"}`, "invalid character"},
		{TypeScan, `{"request_id":""}`, "empty"},
		{TypeScan, `{"request_id":"a","secret":"x"}`, "unknown field"},
		{TypePoll, `{"request_id":"a"}`, "poll 0"},
		{TypeFetch, `{"request_id":"` + strings.Repeat("a", 129) + `"}`, "at most 128"},
	}
	for _, c := range bad {
		_, err := decodePayload(asynq.NewTask(c.typ, []byte(c.payload)))
		if err == nil || !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: %v, want SkipRetry with %q", c.typ, c.payload, err, c.want)
		}
	}
}

func testRequests(t *testing.T) (*Requests, redis.UniversalClient) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	prefix := fmt.Sprintf("test:tasks:%d", rand.Int64())
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
		rdb.Close()
	})
	return NewRequests(rdb, prefix, time.Hour), rdb
}

func TestRequestGuards(t *testing.T) {
	t.Parallel()
	r, _ := testRequests(t)
	ctx := context.Background()
	req := &Request{ID: "r1", InstanceID: "i", NodeID: "n", Origin: OriginCLI}
	if created, err := r.Create(ctx, req); !created || err != nil {
		t.Fatalf("Create: %v %v", created, err)
	}
	if created, _ := r.Create(ctx, req); created {
		t.Fatal("a second Create of the same id succeeded")
	}
	// Poll guard: poll 3 then a stale poll 2 is refused; a re-run of 3 is fine.
	for _, tc := range []struct {
		poll int
		want int
	}{{1, applied}, {3, applied}, {2, stale}, {3, applied}} {
		n, err := r.apply(ctx, "r1", change{minPoll: tc.poll, set: map[string]string{"polls": fmt.Sprint(tc.poll)}})
		if err != nil || n != tc.want {
			t.Errorf("poll %d: %d %v, want %d", tc.poll, n, err, tc.want)
		}
	}
	// The job id is set once.
	if n, _ := r.apply(ctx, "r1", change{requireNoJob: true, set: map[string]string{"job_id": "j1"}}); n != applied {
		t.Fatal("first job id refused")
	}
	if n, _ := r.apply(ctx, "r1", change{requireNoJob: true, set: map[string]string{"job_id": "j2"}}); n != stale {
		t.Fatal("second job id accepted")
	}
	// Exactly one terminal transition, even when raced.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			state := StateDone
			if i%2 == 1 {
				state = StateFailed
			}
			if n, _ := r.apply(ctx, "r1", change{state: state, terminal: true}); n == applied {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d terminal transitions, want 1", wins)
	}
	if n, _ := r.apply(ctx, "r1", change{set: map[string]string{"x": "y"}}); n != isTerminal {
		t.Error("an ended request was changed")
	}
	if n, _ := r.apply(ctx, "nope", change{set: map[string]string{"x": "y"}}); n != missing {
		t.Error("a missing request was created by an update")
	}
	got, err := r.Get(ctx, "r1")
	if err != nil || got.JobID != "j1" || got.Polls != 3 || !got.State.Terminal() {
		t.Errorf("record %+v %v", got, err)
	}
	ev, _ := r.Events(ctx, "r1")
	if len(ev) != 2 || ev[0].State != StateQueued || !ev[1].State.Terminal() {
		t.Errorf("events %+v", ev)
	}
	if _, err := r.Get(ctx, "nope"); !errors.Is(err, ErrRequestNotFound) {
		t.Errorf("Get(nope) = %v", err)
	}
}

func TestNodeLock(t *testing.T) {
	t.Parallel()
	r, _ := testRequests(t)
	ctx := context.Background()
	if l, _ := r.acquire(ctx, "i", "n", "a", time.Minute); l != "a" {
		t.Fatalf("first acquire: leader %s", l)
	}
	if l, _ := r.acquire(ctx, "i", "n", "a", time.Minute); l != "a" {
		t.Fatalf("re-acquire by the leader: %s", l)
	}
	for _, w := range []string{"b", "c"} {
		if l, _ := r.acquire(ctx, "i", "n", w, time.Minute); l != "a" {
			t.Fatalf("%s got leader %s", w, l)
		}
	}
	if l, _ := r.acquire(ctx, "i", "other", "d", time.Minute); l != "d" {
		t.Fatal("another node is not independent")
	}
	if cur, _ := r.InFlight(ctx, "i", "n"); cur != "a" {
		t.Errorf("InFlight = %q", cur)
	}
	// Only the leader frees the node; every release hands over the waiters.
	ws, _ := r.release(ctx, "i", "n", "b")
	if cur, _ := r.InFlight(ctx, "i", "n"); cur != "a" || len(ws) != 2 {
		t.Errorf("a waiter freed the node: %q, waiters %v", cur, ws)
	}
	if _, err := r.release(ctx, "i", "n", "a"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := r.InFlight(ctx, "i", "n"); cur != "" {
		t.Errorf("node still held by %q", cur)
	}
	if l, _ := r.acquire(ctx, "i", "n", "e", time.Minute); l != "e" {
		t.Errorf("after release: leader %s", l)
	}
}

func TestSubmitValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o    SubmitOptions
		want string
	}{
		{SubmitOptions{NodeID: "n"}, "instance id is empty"},
		{SubmitOptions{InstanceID: "i"}, "node id is empty"},
		{SubmitOptions{InstanceID: "i", NodeID: "n", AllNodes: true}, "not both"},
		{SubmitOptions{InstanceID: "i", NodeID: "n", Origin: "cron"}, `origin "cron"`},
		{SubmitOptions{InstanceID: "i", NodeID: "n", ID: "x y"}, "invalid character"},
	} {
		if err := tc.o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	if err := (SubmitOptions{InstanceID: "i", AllNodes: true, Origin: OriginTrigger}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestStatusAggregatesChildren(t *testing.T) {
	t.Parallel()
	st := &Status{Request: &Request{State: StateDispatched},
		Children: []Request{{State: StateDone}, {State: StatePolling}}}
	if st.State() != StateDispatched {
		t.Errorf("with a child running: %s", st.State())
	}
	st.Children[1].State = StateFailed
	if st.State() != StateFailed {
		t.Errorf("with a child failed: %s", st.State())
	}
	st.Children[1].State = StateDone
	if st.State() != StateDone {
		t.Errorf("all done: %s", st.State())
	}
}

func TestSlot(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 10, 17, 42, 0, time.UTC)
	for _, tc := range []struct {
		spec string
		want time.Time
	}{
		{"@every 15m", time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)},
		{"@every 2s", time.Date(2026, 11, 28, 10, 17, 42, 0, time.UTC)},
		{"*/5 * * * *", time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)},
		{"17 10 * * *", time.Date(2026, 11, 28, 10, 17, 0, 0, time.UTC)},
		{"30 10 * * *", time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC)},
		{"@hourly", time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)},
		{"@monthly", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"0 0 1 1 *", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		got, err := Slot(tc.spec, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("Slot(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
		// Two replicas ticking at different moments of one slot agree.
		if later, _ := Slot(tc.spec, got.Add(time.Second/2)); !later.Equal(got) {
			t.Errorf("Slot(%q) moved within the slot: %v", tc.spec, later)
		}
	}
	if _, err := Slot("every day", now); err == nil {
		t.Error("a bad spec was accepted")
	}
}
