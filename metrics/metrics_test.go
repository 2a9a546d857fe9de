package metrics

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/internal/testredis"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

func TestEventMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.ObserveDCS(dcsapi.CallInfo{Op: dcsapi.OpScanClients, Status: 200, Class: dcsapi.ClassNone, Duration: 30 * time.Millisecond})
	m.ObserveDCS(dcsapi.CallInfo{Op: dcsapi.OpShowJobInfo, Status: 429, Class: dcsapi.ClassThrottled, Duration: time.Millisecond})
	m.ObserveDCS(dcsapi.CallInfo{Op: dcsapi.OpListClients, Status: 0, Class: dcsapi.ClassTransient, Err: context.DeadlineExceeded})
	m.ObserveDCS(dcsapi.CallInfo{Op: dcsapi.OpListClients, Class: dcsapi.ClassThrottled, Err: &dcsapi.ThrottleError{}})
	m.BudgetWait(dcsapi.OpListClients, 2*time.Second, true)
	m.ScanStarted(&tasks.Request{})
	m.JobCompleted(&tasks.Request{}, 3, 4*time.Second)
	m.RequestFinished(&tasks.Request{Origin: tasks.OriginTrigger, RequestedAt: time.Now().Add(-5 * time.Second)}, tasks.StateDone, "")
	m.RequestFinished(&tasks.Request{Origin: tasks.OriginSchedule}, tasks.StateFailed, "job_failed")

	if err := testutil.CollectAndCompare(m.dcsRequests, strings.NewReader(`
# HELP dcsjobs_dcs_requests_total DCS API calls by operation, HTTP status ("none" without a response) and error class (ok, throttled, transient, auth, permanent).
# TYPE dcsjobs_dcs_requests_total counter
dcsjobs_dcs_requests_total{class="ok",operation="IAMToken",status="200"} 0
dcsjobs_dcs_requests_total{class="ok",operation="ListClients",status="200"} 0
dcsjobs_dcs_requests_total{class="ok",operation="ListInstances",status="200"} 0
dcsjobs_dcs_requests_total{class="ok",operation="ListLogicalNodes",status="200"} 0
dcsjobs_dcs_requests_total{class="ok",operation="ScanClients",status="200"} 1
dcsjobs_dcs_requests_total{class="ok",operation="ShowInstance",status="200"} 0
dcsjobs_dcs_requests_total{class="ok",operation="ShowJobInfo",status="200"} 0
dcsjobs_dcs_requests_total{class="throttled",operation="ShowJobInfo",status="429"} 1
dcsjobs_dcs_requests_total{class="transient",operation="ListClients",status="none"} 1
`)); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.throttled.WithLabelValues(dcsapi.OpShowJobInfo, "gateway"), 1},
		{m.throttled.WithLabelValues(dcsapi.OpListClients, "budget"), 1},
		{m.scansStarted, 1},
		{m.completed.WithLabelValues(tasks.OriginTrigger), 1},
		{m.failed.WithLabelValues(tasks.OriginSchedule, "job_failed"), 1},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%v = %v, want %v", tc.c, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.reqDuration); n != len(origins) {
		t.Errorf("%d request duration series", n)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestMiddlewareOutcomes(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry())
	throttle := errors.New("throttled")
	isFailure := func(err error) bool { return err != throttle }
	for _, err := range []error{nil, fmt.Errorf("x: %w", asynq.SkipRetry), throttle, errors.New("boom")} {
		h := m.Middleware(isFailure)(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return err }))
		_ = h.ProcessTask(context.Background(), asynq.NewTask(tasks.TypePoll, nil))
	}
	_ = m.Middleware(isFailure)(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })).
		ProcessTask(context.Background(), asynq.NewTask("attacker:"+strings.Repeat("x", 10), nil))
	for outcome, want := range map[string]float64{"success": 1, "archived": 1, "throttled": 1, "retry": 1} {
		if got := testutil.ToFloat64(m.tasks.WithLabelValues(tasks.TypePoll, outcome)); got != want {
			t.Errorf("outcome %s = %v", outcome, got)
		}
	}
	if got := testutil.ToFloat64(m.tasks.WithLabelValues("other", "success")); got != 1 {
		t.Errorf("unknown task types are not folded into \"other\": %v", got)
	}
	if got := testutil.ToFloat64(m.inProgress.WithLabelValues(tasks.TypePoll)); got != 0 {
		t.Errorf("in progress after return: %v", got)
	}
}

func TestSessionCollector(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	prefix := fmt.Sprintf("test:metrics:%d", rand.Int64())
	defer func() {
		keys, _ := rdb.Keys(context.Background(), prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	}()
	store := results.NewStore(rdb, results.StoreOptions{Prefix: prefix})
	clients := []dcsapi.ClientInfo{
		{ID: "1", Addr: "10.0.0.1:1000", DB: "0", Age: 100, Idle: 5},
		{ID: "2", Addr: "10.0.0.1:1001", DB: "0", Age: 50, Idle: 900},
		{ID: "3", Addr: "10.0.0.2:1000", DB: "3", Age: 10, Idle: 700},
	}
	fetched := time.Unix(1795860000, 0).UTC()
	snap := &results.Snapshot{ID: "s1", Request: results.Request{ID: "s1", InstanceID: "inst-1", NodeID: "node-1"},
		FetchedAt: fetched, Count: 3, Clients: clients,
		Summary: results.Summarize(clients, results.SummaryOptions{IdleThreshold: 10 * time.Minute})}
	if err := store.Save(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	insts := tasks.NewInstances(rdb, prefix, time.Hour)
	rdb.HSet(context.Background(), prefix+":instance:inst-1", "max_clients", 10000)
	c := NewSessionCollector(store, insts, SessionCollectorOptions{TopClientIPs: 1, IdleThreshold: 10 * time.Minute})
	want := `
# HELP dcsjobs_instance_max_clients maxclients per node of the instance, from DCS ShowInstance.
# TYPE dcsjobs_instance_max_clients gauge
dcsjobs_instance_max_clients{instance_id="inst-1"} 10000
# HELP dcsjobs_node_client_ips Distinct client IPs in the latest snapshot.
# TYPE dcsjobs_node_client_ips gauge
dcsjobs_node_client_ips{instance_id="inst-1",node_id="node-1"} 2
# HELP dcsjobs_node_last_audit_timestamp_seconds When the latest snapshot of the node was fetched (Unix time).
# TYPE dcsjobs_node_last_audit_timestamp_seconds gauge
dcsjobs_node_last_audit_timestamp_seconds{instance_id="inst-1",node_id="node-1"} 1.79586e+09
# HELP dcsjobs_node_oldest_connection_age_seconds Age of the oldest connection in the latest snapshot.
# TYPE dcsjobs_node_oldest_connection_age_seconds gauge
dcsjobs_node_oldest_connection_age_seconds{instance_id="inst-1",node_id="node-1"} 100
# HELP dcsjobs_node_sessions Client sessions of the node in its latest snapshot.
# TYPE dcsjobs_node_sessions gauge
dcsjobs_node_sessions{instance_id="inst-1",node_id="node-1"} 3
# HELP dcsjobs_node_sessions_by_client_ip Sessions of the top client IPs of the node (opt-in, capped).
# TYPE dcsjobs_node_sessions_by_client_ip gauge
dcsjobs_node_sessions_by_client_ip{client_ip="10.0.0.1",instance_id="inst-1",node_id="node-1"} 2
# HELP dcsjobs_node_sessions_by_db Sessions per db index in the latest snapshot.
# TYPE dcsjobs_node_sessions_by_db gauge
dcsjobs_node_sessions_by_db{db="0",instance_id="inst-1",node_id="node-1"} 2
dcsjobs_node_sessions_by_db{db="3",instance_id="inst-1",node_id="node-1"} 1
# HELP dcsjobs_node_sessions_idle Sessions idle longer than the idle threshold in the latest snapshot.
# TYPE dcsjobs_node_sessions_idle gauge
dcsjobs_node_sessions_idle{instance_id="inst-1",node_id="node-1"} 2
# HELP dcsjobs_store_up 1 when the snapshot store in Redis answered at the last read, else 0.
# TYPE dcsjobs_store_up gauge
dcsjobs_store_up 1
# HELP dcsjobs_idle_threshold_seconds Sessions idle longer than this count in dcsjobs_node_sessions_idle.
# TYPE dcsjobs_idle_threshold_seconds gauge
dcsjobs_idle_threshold_seconds 600
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// Off by default: no per-IP series.
	off := NewSessionCollector(store, insts, SessionCollectorOptions{})
	if err := testutil.CollectAndCompare(off, strings.NewReader(""), "dcsjobs_node_sessions_by_client_ip"); err != nil {
		t.Error(err)
	}
	// The cap holds whatever is asked.
	if NewSessionCollector(store, nil, SessionCollectorOptions{TopClientIPs: 1000}).opts.TopClientIPs != MaxTopClientIPs {
		t.Error("TopClientIPs not capped")
	}
}

func TestSessionCollectorRedisDown(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewSessionCollector(results.NewStore(rdb, results.StoreOptions{}), nil, SessionCollectorOptions{}),
		NewPoolCollector(rdb))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP dcsjobs_store_up 1 when the snapshot store in Redis answered at the last read, else 0.
# TYPE dcsjobs_store_up gauge
dcsjobs_store_up 0
`), "dcsjobs_store_up", "dcsjobs_node_sessions"); err != nil {
		t.Error(err)
	}
}

func TestQueueCollectorRenamesNonCounterTotals(t *testing.T) {
	t.Parallel()
	r := testredis.Start(t)
	rdb := r.Client()
	if _, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("x", nil), asynq.Queue("q1")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewQueueCollector(asynq.NewInspectorFromRedisClient(rdb)))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP asynq_queue_paused 1 when the queue is paused, else 0.
# TYPE asynq_queue_paused gauge
asynq_queue_paused{queue="q1"} 0
# HELP asynq_queue_size Number of tasks in a queue
# TYPE asynq_queue_size gauge
asynq_queue_size{queue="q1"} 1
`), "asynq_queue_paused", "asynq_queue_size"); err != nil {
		t.Error(err)
	}
	if v, err := testutil.GatherAndCount(reg, "asynq_queue_tasks"); err != nil || v != 6 {
		t.Errorf("asynq_queue_tasks series: %d %v", v, err)
	}
	if n, _ := testutil.GatherAndCount(reg, "asynq_tasks_enqueued_total", "asynq_queue_paused_total"); n != 0 {
		t.Errorf("%d series under the old names", n)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %+v %v", problems, err)
	}
}

func TestMiddlewareInProgressSurvivesPanics(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry())
	h := m.Middleware(func(error) bool { return true })(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { panic("boom") }))
	func() {
		defer func() { _ = recover() }()
		_ = h.ProcessTask(context.Background(), asynq.NewTask(tasks.TypeFetch, nil))
	}()
	if got := testutil.ToFloat64(m.inProgress.WithLabelValues(tasks.TypeFetch)); got != 0 {
		t.Errorf("tasks_in_progress = %v after a panic", got)
	}
}
