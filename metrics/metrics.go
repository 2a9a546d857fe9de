// Package metrics is the worker's Prometheus instrumentation, built on an
// injected prometheus.Registerer (never the global registry):
//
//   - DCS API calls (dcsapi.Config.Observe) and API budget waits,
//   - pipeline events (tasks.Observer): scans, completions, failures by
//     reason, polls per job, job wait, end-to-end duration by origin,
//   - asynq task outcomes and durations (Middleware),
//   - session gauges per node read from the snapshots stored in Redis at
//     scrape time (SessionCollector), so every replica reports the same
//     values and a restart loses nothing,
//   - asynq queue gauges (x/metrics), the Redis pool, and build info.
//
// No label ever holds a per-session value; per-client-IP series are opt-in
// and capped (see SessionCollectorOptions.TopClientIPs).
package metrics

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// Namespace prefixes every metric of this package.
const Namespace = "dcsjobs"

// Metrics are the worker's event metrics.
type Metrics struct {
	dcsRequests  *prometheus.CounterVec
	dcsDuration  *prometheus.HistogramVec
	throttled    *prometheus.CounterVec
	budgetWait   prometheus.Histogram
	scansStarted prometheus.Counter
	completed    *prometheus.CounterVec
	failed       *prometheus.CounterVec
	jobPolls     prometheus.Histogram
	jobWait      prometheus.Histogram
	reqDuration  *prometheus.HistogramVec
	tasks        *prometheus.CounterVec
	taskDuration *prometheus.HistogramVec
	inProgress   *prometheus.GaugeVec
	auditRuns    *prometheus.CounterVec
	auditSkips   *prometheus.CounterVec
}

// Label values known in advance, so that every series exists from the start
// (a rate() over a series that appears late misses its first increment).
var (
	operations = []string{dcsapi.OpScanClients, dcsapi.OpListClients, dcsapi.OpShowJobInfo,
		dcsapi.OpListInstances, dcsapi.OpShowInstance, dcsapi.OpListLogicalNodes, dcsapi.OpIAMToken}
	origins        = []string{tasks.OriginCLI, tasks.OriginSchedule, tasks.OriginTrigger, tasks.OriginDemo}
	failureReasons = []string{"permanent", "transient", "auth", "job_failed", "deadline", "lost"}
	taskOutcomes   = []string{"success", "retry", "throttled", "archived"}
)

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		dcsRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "dcs_requests_total",
			Help: "DCS API calls by operation, HTTP status (\"none\" without a response) and error class (ok, throttled, transient, auth, permanent)."},
			[]string{"operation", "status", "class"}),
		dcsDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "dcs_request_duration_seconds",
			Help: "Latency of DCS API calls.", Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"operation"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "dcs_throttled_total",
			Help: "DCS calls throttled, by the API gateway (HTTP 429) or held back by the shared API budget."},
			[]string{"operation", "source"}),
		budgetWait: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "api_budget_wait_seconds",
			Help:    "Time DCS calls waited for the shared API budget (calls that did not wait are not observed).",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		scansStarted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "scans_started_total",
			Help: "DCS scans started (ScanClients accepted)."}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "requests_completed_total",
			Help: "Session requests that ended with a stored snapshot, by origin."}, []string{"origin"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "requests_failed_total",
			Help: "Session requests that ended failed, by origin and reason (permanent, transient, auth, job_failed, deadline, lost)."},
			[]string{"origin", "reason"}),
		jobPolls: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "job_polls",
			Help: "Polls until a DCS scan job was seen complete.", Buckets: []float64{1, 2, 3, 5, 8, 13, 21, 34, 55}}),
		jobWait: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "job_wait_seconds",
			Help:    "Time from the scan request until its DCS job was seen complete.",
			Buckets: []float64{.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}}),
		reqDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "request_duration_seconds",
			Help:    "Time from a session request's submission until it ended (done or failed), by origin.",
			Buckets: []float64{.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200}}, []string{"origin"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "tasks_total",
			Help: "asynq tasks handled, by type and outcome (success, retry, throttled, archived)."},
			[]string{"task_type", "outcome"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "task_duration_seconds",
			Help: "Handler duration of asynq tasks, by type.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"task_type"}),
		inProgress: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "tasks_in_progress",
			Help: "asynq tasks being handled now, by type."}, []string{"task_type"}),
		auditRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "audit_requests_total",
			Help: "Requests submitted by scheduled audits (one per node and slot), by audit."}, []string{"audit"}),
		auditSkips: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "audit_slots_skipped_total",
			Help: "Node slots of scheduled audits skipped because the node's previous scan was still running, by audit."}, []string{"audit"}),
	}
	reg.MustRegister(m.dcsRequests, m.dcsDuration, m.throttled, m.budgetWait, m.scansStarted, m.completed, m.failed,
		m.jobPolls, m.jobWait, m.reqDuration, m.tasks, m.taskDuration, m.inProgress, m.auditRuns, m.auditSkips)
	for _, op := range operations {
		m.dcsDuration.WithLabelValues(op)
		m.throttled.WithLabelValues(op, "gateway")
		m.throttled.WithLabelValues(op, "budget")
		m.dcsRequests.WithLabelValues(op, "200", "ok")
	}
	for _, o := range origins {
		m.completed.WithLabelValues(o)
		m.reqDuration.WithLabelValues(o)
		for _, r := range failureReasons {
			m.failed.WithLabelValues(o, r)
		}
	}
	for _, t := range tasks.AllTypes {
		m.taskDuration.WithLabelValues(t)
		m.inProgress.WithLabelValues(t)
		for _, o := range taskOutcomes {
			m.tasks.WithLabelValues(t, o)
		}
	}
	return m
}

// ObserveDCS records one DCS exchange; it is dcsapi.Config.Observe.
func (m *Metrics) ObserveDCS(ci dcsapi.CallInfo) {
	status := "none"
	if ci.Status > 0 {
		status = strconv.Itoa(ci.Status)
	}
	class := ci.Class.String()
	if ci.Class == dcsapi.ClassNone {
		class = "ok"
	}
	var te *dcsapi.ThrottleError
	if errors.As(ci.Err, &te) {
		return // held back before sending: counted by BudgetWait
	}
	m.dcsRequests.WithLabelValues(ci.Op, status, class).Inc()
	m.dcsDuration.WithLabelValues(ci.Op).Observe(ci.Duration.Seconds())
	if ci.Class == dcsapi.ClassThrottled {
		m.throttled.WithLabelValues(ci.Op, "gateway").Inc()
	}
}

// BudgetWait records a wait for the shared API budget; it is budget.Budget.OnWait.
func (m *Metrics) BudgetWait(op string, d time.Duration, heldBack bool) {
	m.budgetWait.Observe(d.Seconds())
	if heldBack {
		m.throttled.WithLabelValues(op, "budget").Inc()
	}
}

// ScanStarted implements tasks.Observer.
func (m *Metrics) ScanStarted(*tasks.Request) { m.scansStarted.Inc() }

// JobCompleted implements tasks.Observer.
func (m *Metrics) JobCompleted(_ *tasks.Request, polls int, wait time.Duration) {
	m.jobPolls.Observe(float64(polls))
	m.jobWait.Observe(wait.Seconds())
}

// RequestFinished implements tasks.Observer.
func (m *Metrics) RequestFinished(r *tasks.Request, state tasks.State, reason string) {
	origin := r.Origin
	if origin == "" {
		origin = tasks.OriginCLI
	}
	if state == tasks.StateDone {
		m.completed.WithLabelValues(origin).Inc()
	} else {
		if reason == "" {
			reason = "permanent"
		}
		m.failed.WithLabelValues(origin, reason).Inc()
	}
	if !r.RequestedAt.IsZero() {
		m.reqDuration.WithLabelValues(origin).Observe(time.Since(r.RequestedAt).Seconds())
	}
}

// AuditSubmitted implements tasks.Observer.
func (m *Metrics) AuditSubmitted(audit string) { m.auditRuns.WithLabelValues(audit).Inc() }

// AuditSkipped implements tasks.Observer.
func (m *Metrics) AuditSkipped(audit string) { m.auditSkips.WithLabelValues(audit).Inc() }

var _ tasks.Observer = (*Metrics)(nil)

// Middleware counts task outcomes and handler durations per task type. The
// outcome follows the worker's retry semantics: a SkipRetry error archives,
// a throttled error is re-queued without counting a failure (isFailure
// false), any other error is retried (or archived on the last attempt).
func (m *Metrics) Middleware(isFailure func(error) bool) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			typ := taskType(t.Type())
			m.inProgress.WithLabelValues(typ).Inc()
			defer m.inProgress.WithLabelValues(typ).Dec() // also when the handler panics
			start := time.Now()
			err := next.ProcessTask(ctx, t)
			m.taskDuration.WithLabelValues(typ).Observe(time.Since(start).Seconds())
			m.tasks.WithLabelValues(typ, outcome(ctx, err, isFailure)).Inc()
			return err
		})
	}
}

// taskType bounds the label: unknown task types (enqueued by mistake, or by
// anyone who can write to Redis) share one value.
func taskType(t string) string {
	for _, k := range tasks.AllTypes {
		if t == k {
			return t
		}
	}
	return "other"
}

func outcome(ctx context.Context, err error, isFailure func(error) bool) string {
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, asynq.SkipRetry):
		return "archived"
	case !isFailure(err):
		return "throttled"
	}
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	if ok1 && ok2 && retried >= maxRetry {
		return "archived"
	}
	return "retry"
}
