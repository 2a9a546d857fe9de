package tasks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
)

// DCS is what the pipeline needs from DCS; *dcsapi.Client implements it.
type DCS interface {
	ScanClients(ctx context.Context, instanceID, nodeID string, cleanCache bool) (string, error)
	ShowJobInfo(ctx context.Context, jobID string) (*dcsapi.Job, error)
	ListClients(ctx context.Context, instanceID, nodeID string, opts dcsapi.ListClientsOptions) (*dcsapi.ClientList, error)
	ListAllClients(ctx context.Context, instanceID, nodeID string, opts dcsapi.ListClientsOptions) (*dcsapi.ClientList, error)
	ScanTargets(ctx context.Context, instanceID string) ([]dcsapi.Node, error)
	ShowInstance(ctx context.Context, instanceID string) (*dcsapi.Instance, error)
}

var _ DCS = (*dcsapi.Client)(nil)

// Enqueuer is the part of *asynq.Client the pipeline uses.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Config tunes the pipeline. Zero values take the documented defaults.
type Config struct {
	// Queues names the queues follow-ups and submissions go to.
	Queues Queues
	// Poll is the schedule of job polls.
	Poll PollSchedule
	// Deadline is how long after the scan request a job may take before the
	// request fails with "job did not finish within ..." (default 10m).
	Deadline time.Duration
	// MaxRetry is asynq's retry budget for transient errors per task (default 8).
	MaxRetry int
	// Backoff is the retry policy of transient errors.
	Backoff Backoff
	// TaskRetention keeps finished tasks (and so their ids reserved) for this
	// long; it must exceed asynq's crash-recovery window of about 1-2 minutes
	// (default 10m).
	TaskRetention time.Duration
	// Summary configures the summary of each snapshot.
	Summary results.SummaryOptions
	// DiffMax caps the new/gone client lists of a diff (default 1000).
	DiffMax int
}

func (c Config) withDefaults() Config {
	c.Queues = c.Queues.withDefaults()
	c.Poll = c.Poll.withDefaults()
	c.Backoff = c.Backoff.withDefaults()
	if c.Deadline <= 0 {
		c.Deadline = 10 * time.Minute
	}
	if c.MaxRetry <= 0 {
		c.MaxRetry = 8
	}
	if c.TaskRetention <= 0 {
		c.TaskRetention = 10 * time.Minute
	}
	if c.DiffMax <= 0 {
		c.DiffMax = 1000
	}
	return c
}

// lockMargin is added to the deadline for the node's scan lock TTL.
const lockMargin = 2 * time.Minute

// Observer receives pipeline events (for metrics); every method must be fast.
// Each event is reported once per state change that took effect (a re-run
// of a step after a crash may, rarely, report ScanStarted twice).
type Observer interface {
	// ScanStarted: DCS accepted a scan (a job id came back).
	ScanStarted(r *Request)
	// JobCompleted: the job of a scanning request was seen complete after
	// polls polls, wait after the scan request.
	JobCompleted(r *Request, polls int, wait time.Duration)
	// RequestFinished: a request ended; reason is "" when done, else the
	// failure class (permanent, transient, auth, job_failed, deadline, lost).
	RequestFinished(r *Request, state State, reason string)
	// AuditSubmitted: a scheduled audit submitted a request for a node.
	AuditSubmitted(audit string)
	// AuditSkipped: a node's slot was skipped, its previous scan still running.
	AuditSkipped(audit string)
}

type nopObserver struct{}

func (nopObserver) AuditSubmitted(string) {}
func (nopObserver) AuditSkipped(string)   {}

func (nopObserver) ScanStarted(*Request)                      {}
func (nopObserver) JobCompleted(*Request, int, time.Duration) {}
func (nopObserver) RequestFinished(*Request, State, string)   {}

// Handlers process the pipeline's tasks.
type Handlers struct {
	dcs    DCS
	q      Enqueuer
	reqs   *Requests
	store  *results.Store
	insts  *Instances
	audits AuditSource
	cfg    Config
	log    zerolog.Logger
	obs    Observer
	now    func() time.Time
}

// Deps are the collaborators of Handlers.
type Deps struct {
	DCS      DCS
	Enqueuer Enqueuer
	Requests *Requests
	Store    *results.Store
	// Instances, when set, caches ShowInstance (maxclients) for metrics.
	Instances *Instances
	// Audits, when set, gives the scheduled audits (their rules are applied
	// to snapshots of the nodes they cover).
	Audits   AuditSource
	Log      zerolog.Logger
	Observer Observer // optional
	Now      func() time.Time
}

// NewHandlers wires the handlers.
func NewHandlers(d Deps, cfg Config) *Handlers {
	h := &Handlers{dcs: d.DCS, q: d.Enqueuer, reqs: d.Requests, store: d.Store, insts: d.Instances, audits: d.Audits, cfg: cfg.withDefaults(),
		log: d.Log, obs: d.Observer, now: d.Now}
	if h.obs == nil {
		h.obs = nopObserver{}
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// Register adds every handler to mux.
func (h *Handlers) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeScan, h.ProcessScan)
	mux.HandleFunc(TypePoll, h.ProcessPoll)
	mux.HandleFunc(TypeFetch, h.ProcessFetch)
	mux.HandleFunc(TypeDiscover, h.ProcessDiscover)
	mux.HandleFunc(TypeAudit, h.ProcessAudit)
}

// load decodes the payload and reads the request. ok is false when there is
// nothing to do (the request already ended); err is then nil or final.
func (h *Handlers) load(ctx context.Context, t *asynq.Task) (Payload, *Request, bool, error) {
	p, err := decodePayload(t)
	if err != nil {
		h.log.Error().Str("task", t.Type()).Err(err).Msg("malformed task archived")
		return p, nil, false, err
	}
	req, err := h.reqs.Get(ctx, p.RequestID)
	if errors.Is(err, ErrRequestNotFound) {
		err = fmt.Errorf("%w: %s: request %s not found (expired or never submitted)", asynq.SkipRetry, t.Type(), p.RequestID)
		h.log.Error().Str("request", p.RequestID).Str("task", t.Type()).Err(err).Msg("task for unknown request archived")
		return p, nil, false, err
	}
	if err != nil {
		return p, nil, false, err // Redis trouble: retry
	}
	if req.State.Terminal() && req.Leader == req.ID {
		// A re-run after a crash between the terminal transition and the
		// release: free the node now rather than when its lock expires.
		if cur, err := h.reqs.InFlight(ctx, req.InstanceID, req.NodeID); err == nil && cur == req.ID {
			h.handOver(ctx, req)
		}
	}
	return p, req, !req.State.Terminal(), nil
}

// transition applies a change and logs it once when it took effect.
func (h *Handlers) transition(ctx context.Context, req *Request, c change) (bool, error) {
	n, err := h.reqs.apply(ctx, req.ID, c)
	if err != nil || n != applied {
		return false, err
	}
	if c.state != "" && (c.state != req.State || c.state == StatePolling) {
		ev := h.log.Info()
		if c.state == StateFailed {
			ev = h.log.Warn()
		}
		ev = ev.Str("request", req.ID).Str("instance", req.InstanceID).Str("node", req.NodeID).
			Str("from", string(req.State)).Str("state", string(c.state))
		for _, k := range []string{"job_id", "polls", "completion_path", "snapshot_id", "count", "error", "leader"} {
			if v, ok := c.set[k]; ok && v != "" {
				ev = ev.Str(k, v)
			}
		}
		ev.Msg(c.detail)
		req.State = c.state
	}
	return true, nil
}

// enqueue adds a follow-up task; a task id that exists already means a
// previous run of this step enqueued it, which is success.
func (h *Handlers) enqueue(ctx context.Context, t *asynq.Task, id string, delay time.Duration) error {
	opts := []asynq.Option{asynq.TaskID(id), asynq.Queue(h.cfg.Queues.Followup),
		asynq.MaxRetry(h.cfg.MaxRetry), asynq.Retention(h.cfg.TaskRetention), asynq.Timeout(5 * time.Minute)}
	if delay > 0 {
		opts = append(opts, asynq.ProcessIn(delay))
	}
	_, err := h.q.EnqueueContext(ctx, t, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

func (h *Handlers) enqueuePoll(ctx context.Context, req *Request, n int) error {
	return h.enqueue(ctx, newTask(TypePoll, Payload{RequestID: req.ID, Poll: n}), pollTaskID(req.ID, n), h.cfg.Poll.Delay(n))
}

// ProcessScan starts the DCS scan of a request's node, or attaches the request
// to a scan already running for that node.
func (h *Handlers) ProcessScan(ctx context.Context, t *asynq.Task) error {
	return h.giveUp(ctx, t, h.processScan(ctx, t))
}

func (h *Handlers) processScan(ctx context.Context, t *asynq.Task) error {
	_, req, ok, err := h.load(ctx, t)
	if !ok {
		return err
	}
	if req.Leader != "" && req.Leader != req.ID {
		// A re-run of an attached request: it follows its leader through its
		// polls; taking the node now would start a second scan beside them.
		return h.enqueuePoll(ctx, req, req.Polls+1)
	}
	leader, err := h.reqs.acquire(ctx, req.InstanceID, req.NodeID, req.ID, h.cfg.Deadline+lockMargin)
	if err != nil {
		return err
	}
	if leader != req.ID {
		if _, err := h.transition(ctx, req, change{state: StateAttached, set: map[string]string{"leader": leader},
			detail: "attached to the scan of request " + leader}); err != nil {
			return err
		}
		return h.enqueuePoll(ctx, req, 1)
	}
	switch {
	case req.JobID != "":
		// A re-run after the job id was persisted: make sure polling goes on.
		return h.enqueuePoll(ctx, req, req.Polls+1)
	case !req.ScanAt.IsZero():
		// A re-run after ScanClients was called but before its job id was
		// stored (crash or lost response): the scan may be running. Never
		// start a second one; watch the session list's time instead.
		if _, err := h.transition(ctx, req, change{state: StatePolling,
			set:    map[string]string{"completion_path": PathListTime, "leader": req.ID},
			detail: "scan outcome unknown after an interrupted call; watching the session list time"}); err != nil {
			return err
		}
		return h.enqueuePoll(ctx, req, req.Polls+1)
	}
	scanAt := h.now().UTC()
	if _, err := h.transition(ctx, req, change{state: StateScanning,
		set: map[string]string{"scan_at": ms(scanAt), "leader": req.ID}, detail: "calling ScanClients"}); err != nil {
		return err
	}
	jobID, err := h.dcs.ScanClients(ctx, req.InstanceID, req.NodeID, req.CleanCache)
	if err != nil {
		var ae *dcsapi.APIError
		if errors.As(err, &ae) || dcsapi.IsThrottled(err) || errors.Is(err, dcsapi.ErrNotSent) {
			// DCS answered with an error, or the call never left: no scan
			// started, so a retry may scan. (A network error or timeout
			// keeps scan_at: the scan may be running.)
			if _, uerr := h.reqs.apply(ctx, req.ID, change{set: map[string]string{"scan_at": ""}}); uerr != nil {
				return uerr
			}
		}
		return h.fail(ctx, req, "ScanClients", err)
	}
	h.obs.ScanStarted(req)
	if _, err := h.transition(ctx, req, change{state: StatePolling, requireNoJob: true,
		set: map[string]string{"job_id": jobID, "completion_path": PathShowJob}, detail: "scan started"}); err != nil {
		return err
	}
	return h.enqueuePoll(ctx, req, 1)
}

// ProcessPoll checks whether the DCS job of a request completed.
func (h *Handlers) ProcessPoll(ctx context.Context, t *asynq.Task) error {
	return h.giveUp(ctx, t, h.processPoll(ctx, t))
}

func (h *Handlers) processPoll(ctx context.Context, t *asynq.Task) error {
	p, req, ok, err := h.load(ctx, t)
	if !ok {
		return err
	}
	n, err := h.reqs.apply(ctx, req.ID, change{minPoll: p.Poll, set: map[string]string{"polls": strconv.Itoa(p.Poll)}})
	if err != nil {
		return err
	}
	if n != applied {
		return nil // a newer poll ran already (stale duplicate), or the request ended
	}
	req.Polls = p.Poll
	if req.Leader != "" && req.Leader != req.ID {
		return h.follow(ctx, req)
	}
	if req.State == StateFetching {
		// A re-run after the job was seen complete: only make sure the fetch
		// is queued (no deadline check, no second ShowJobInfo or JobCompleted).
		return h.enqueue(ctx, newTask(TypeFetch, Payload{RequestID: req.ID}), fetchTaskID(req.ID), 0)
	}
	since := req.ScanAt
	if since.IsZero() {
		since = req.RequestedAt
	}
	if h.now().Sub(since) > h.cfg.Deadline {
		return h.finishFailed(ctx, req, fmt.Errorf("job did not finish within %v", h.cfg.Deadline), "deadline")
	}
	if req.CompletionPath != PathListTime {
		job, err := h.dcs.ShowJobInfo(ctx, req.JobID)
		switch {
		case dcsapi.IsJobNotFound(err):
			if _, err := h.transition(ctx, req, change{state: StatePolling,
				set:    map[string]string{"completion_path": PathListTime},
				detail: "/jobs does not know job " + req.JobID + "; watching the session list time"}); err != nil {
				return err
			}
			req.CompletionPath = PathListTime
		case err != nil:
			return h.fail(ctx, req, "ShowJobInfo", err)
		case job.Status == dcsapi.JobSuccess:
			return h.toFetch(ctx, req, map[string]string{"job_status": string(job.Status),
				"job_begin": ms(job.BeginTime), "job_end": ms(job.EndTime)}, "DCS job succeeded")
		case job.Status == dcsapi.JobFail:
			reason := job.FailReason
			if reason == "" {
				reason = "no fail_reason given"
			}
			req.JobStatus = string(job.Status)
			_, _ = h.reqs.apply(ctx, req.ID, change{set: map[string]string{"job_status": string(job.Status),
				"job_begin": ms(job.BeginTime), "job_end": ms(job.EndTime)}})
			return h.finishFailed(ctx, req, fmt.Errorf("DCS job %s failed: %s", req.JobID, reason), "job_failed")
		default:
			if _, err := h.reqs.apply(ctx, req.ID, change{set: map[string]string{"job_status": string(job.Status)}}); err != nil {
				return err
			}
			return h.enqueuePoll(ctx, req, p.Poll+1)
		}
	}
	return h.pollListTime(ctx, req)
}

// pollListTime decides completion from ListClients' time: the session list is
// complete once its time is at or after the scan request (to the second, the
// coarsest resolution the time may have).
func (h *Handlers) pollListTime(ctx context.Context, req *Request) error {
	l, err := h.dcs.ListClients(ctx, req.InstanceID, req.NodeID, dcsapi.ListClientsOptions{Limit: 1})
	if err != nil {
		var ae *dcsapi.APIError
		if errors.As(err, &ae) && ae.Status >= 500 {
			// DCS answers 500 until a list exists: not ready yet.
			_, _ = h.reqs.apply(ctx, req.ID, change{set: map[string]string{"last_error": err.Error()}})
			return h.enqueuePoll(ctx, req, req.Polls+1)
		}
		return h.fail(ctx, req, "ListClients", err)
	}
	complete := false
	if !l.Time.Time.IsZero() {
		complete = !l.Time.Time.Before(req.ScanAt.Truncate(time.Second))
	} else if req.ListTimeRaw == "" {
		// An unparseable time: remember the first one seen, complete on change.
		if _, err := h.reqs.apply(ctx, req.ID, change{set: map[string]string{"list_time_raw": l.Time.Raw}}); err != nil {
			return err
		}
	} else {
		complete = l.Time.Raw != req.ListTimeRaw
	}
	if complete {
		return h.toFetch(ctx, req, map[string]string{"job_status": string(dcsapi.JobSuccess)},
			"session list time "+l.Time.Raw+" is past the scan request")
	}
	return h.enqueuePoll(ctx, req, req.Polls+1)
}

func (h *Handlers) toFetch(ctx context.Context, req *Request, set map[string]string, detail string) error {
	ok, err := h.transition(ctx, req, change{state: StateFetching, set: set, detail: detail})
	if err != nil {
		return err
	}
	if ok {
		h.obs.JobCompleted(req, req.Polls, h.now().Sub(req.ScanAt))
	}
	return h.enqueue(ctx, newTask(TypeFetch, Payload{RequestID: req.ID}), fetchTaskID(req.ID), 0)
}

// follow checks the leader of an attached request and copies its outcome.
func (h *Handlers) follow(ctx context.Context, req *Request) error {
	leader, err := h.reqs.Get(ctx, req.Leader)
	switch {
	case errors.Is(err, ErrRequestNotFound):
		return h.finishFailed(ctx, req, fmt.Errorf("the scan this request shared (request %s) is gone", req.Leader), "lost")
	case err != nil:
		return err
	case leader.State.Terminal():
		return h.adopt(ctx, req, leader)
	case h.now().Sub(req.RequestedAt) > h.cfg.Deadline+lockMargin:
		return h.finishFailed(ctx, req, fmt.Errorf("job did not finish within %v (shared with request %s)", h.cfg.Deadline, req.Leader), "deadline")
	}
	return h.enqueuePoll(ctx, req, req.Polls+1)
}

// adopt ends a follower with its leader's outcome.
func (h *Handlers) adopt(ctx context.Context, req, leader *Request) error {
	if leader.State == StateDone {
		ok, err := h.transition(ctx, req, change{state: StateDone, terminal: true, set: map[string]string{
			"snapshot_id": leader.SnapshotID, "count": strconv.Itoa(leader.Count), "job_id": leader.JobID,
			"job_status": leader.JobStatus, "job_begin": ms(leader.JobBegin), "job_end": ms(leader.JobEnd),
			"completion_path": leader.CompletionPath, "scan_at": ms(leader.ScanAt)},
			detail: "result of request " + leader.ID})
		if ok {
			h.obs.RequestFinished(req, StateDone, "")
		}
		return err
	}
	ok, err := h.transition(ctx, req, change{state: StateFailed, terminal: true, set: map[string]string{
		"error": "shared scan (request " + leader.ID + ") failed: " + leader.Error, "error_code": leader.ErrorCode,
		"error_class": leader.ErrorClass, "job_id": leader.JobID}, detail: "shared scan failed"})
	if ok {
		h.obs.RequestFinished(req, StateFailed, leader.ErrorClass)
	}
	return err
}

// ProcessFetch reads the whole session list and stores the snapshot.
func (h *Handlers) ProcessFetch(ctx context.Context, t *asynq.Task) error {
	return h.giveUp(ctx, t, h.processFetch(ctx, t))
}

func (h *Handlers) processFetch(ctx context.Context, t *asynq.Task) error {
	_, req, ok, err := h.load(ctx, t)
	if !ok {
		return err
	}
	list, err := h.dcs.ListAllClients(ctx, req.InstanceID, req.NodeID, dcsapi.ListClientsOptions{})
	if err != nil {
		return h.fail(ctx, req, "ListClients", err)
	}
	snap := &results.Snapshot{
		ID: req.ID,
		Request: results.Request{ID: req.ID, InstanceID: req.InstanceID, NodeID: req.NodeID,
			CleanCache: req.CleanCache, Origin: req.Origin, Audit: req.Audit, RequestedAt: req.RequestedAt},
		Job: results.Job{ID: req.JobID, Status: req.JobStatus, BeginTime: req.JobBegin, EndTime: req.JobEnd,
			CompletionPath: req.CompletionPath, Polls: req.Polls},
		DCSTime: list.Time.Time, DCSTimeRaw: list.Time.Raw, FetchedAt: h.now().UTC(),
		Count: len(list.Clients), Clients: list.Clients,
	}
	if snap.Job.Status == "" {
		snap.Job.Status = string(dcsapi.JobSuccess)
	}
	snap.Summary = results.Summarize(list.Clients, h.cfg.Summary)
	prev, err := h.store.Previous(ctx, req.InstanceID, req.NodeID, req.ID)
	switch {
	case err == nil:
		d := results.Compare(prev.Clients, list.Clients, h.cfg.DiffMax)
		d.PreviousID, d.PreviousTime = prev.ID, prev.DCSTime
		snap.Diff = &d
	case errors.Is(err, results.ErrNotFound):
		prev = nil
	default:
		return err
	}
	// One read (and at most one ShowInstance an hour) of the instance's
	// maxclients serves the audit rules and the metrics.
	var maxClients int64
	if h.insts != nil {
		info, err := h.insts.refresh(ctx, h.dcs, req.InstanceID, h.now())
		if err != nil {
			h.log.Debug().Err(err).Str("instance", req.InstanceID).Msg("instance info not refreshed")
		}
		maxClients = info.MaxClients
	}
	retention := h.evaluate(req, snap, prev, maxClients)
	if err := h.store.SaveFor(ctx, snap, retention); err != nil {
		return err
	}
	ok, err = h.transition(ctx, req, change{state: StateDone, terminal: true, set: map[string]string{
		"snapshot_id": snap.ID, "count": strconv.Itoa(snap.Count)}, detail: "snapshot stored"})
	if err != nil {
		return err
	}
	if ok {
		h.obs.RequestFinished(req, StateDone, "")
	}
	h.handOver(ctx, req)
	return nil
}

// handOver frees the node and ends the requests that waited on this scan
// (best effort: each follower also polls its leader, so none is lost).
func (h *Handlers) handOver(ctx context.Context, leader *Request) {
	waiters, err := h.reqs.release(ctx, leader.InstanceID, leader.NodeID, leader.ID)
	if err != nil {
		h.log.Warn().Err(err).Str("request", leader.ID).Msg("could not release the node; its lock expires on its own")
		return
	}
	fresh, err := h.reqs.Get(ctx, leader.ID)
	if err != nil {
		return
	}
	for _, w := range waiters {
		if fr, err := h.reqs.Get(ctx, w); err == nil && !fr.State.Terminal() && fr.Leader == leader.ID {
			_ = h.adopt(ctx, fr, fresh)
		}
	}
}

// giveUp ends the request as failed when a task returns an error on its last
// attempt that no step turned into a terminal state (a Redis error, say):
// asynq archives such a task, and nothing else would end the request.
func (h *Handlers) giveUp(ctx context.Context, t *asynq.Task, err error) error {
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		return err
	}
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	if !ok1 || !ok2 || retried < maxRetry {
		return err
	}
	p, perr := decodePayload(t)
	if perr != nil {
		return err
	}
	req, gerr := h.reqs.Get(ctx, p.RequestID)
	if gerr != nil || req.State.Terminal() {
		return err
	}
	return h.finishFailed(ctx, req, fmt.Errorf("%s gave up after %d attempts: %w", t.Type(), retried+1, err), "transient")
}

// fail sorts err: throttling retries after the advised delay without counting
// a failure; permanent errors end the request now; transient and auth errors
// are retried with backoff, and end the request on the task's last attempt.
func (h *Handlers) fail(ctx context.Context, req *Request, op string, err error) error {
	class := dcsapi.Classify(err)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	switch class {
	case dcsapi.ClassThrottled:
		if retried >= maxRetry {
			// asynq archives a task with no retry left whatever the error:
			// end the request rather than leave it in no terminal state.
			return h.finishFailed(ctx, req, fmt.Errorf("%s still throttled after %d failed attempts: %w", op, retried, err), dcsapi.ClassTransient.String())
		}
		d, ok := dcsapi.RetryAfter(err)
		if !ok {
			d = h.cfg.Backoff.Delay(0)
		}
		return &throttledError{Delay: d, Err: err}
	case dcsapi.ClassPermanent:
		return h.finishFailed(ctx, req, err, class.String())
	}
	if retried >= maxRetry {
		return h.finishFailed(ctx, req, fmt.Errorf("%s failed %d times, last: %w", op, retried+1, err), class.String())
	}
	_, _ = h.reqs.apply(ctx, req.ID, change{set: map[string]string{"last_error": err.Error()}})
	h.log.Debug().Str("request", req.ID).Str("op", op).Str("class", class.String()).Err(err).Msg("will retry")
	return err
}

// finishFailed ends the request as failed (once) and returns an error that
// makes asynq archive the task with the reason.
func (h *Handlers) finishFailed(ctx context.Context, req *Request, cause error, class string) error {
	msg := cause.Error()
	ok, err := h.transition(ctx, req, change{state: StateFailed, terminal: true, set: map[string]string{
		"error": msg, "error_code": dcsapi.ErrorCode(cause), "error_class": class}, detail: msg})
	if err != nil {
		return err // Redis trouble: the task retries and fails again
	}
	if ok {
		h.obs.RequestFinished(req, StateFailed, class)
	}
	if req.Leader == req.ID || req.Leader == "" {
		h.handOver(ctx, req)
	}
	return fmt.Errorf("%w: %s", asynq.SkipRetry, msg)
}

// ProcessDiscover expands an all-nodes request into one request per node.
func (h *Handlers) ProcessDiscover(ctx context.Context, t *asynq.Task) error {
	return h.giveUp(ctx, t, h.processDiscover(ctx, t))
}

func (h *Handlers) processDiscover(ctx context.Context, t *asynq.Task) error {
	_, req, ok, err := h.load(ctx, t)
	if !ok {
		return err
	}
	if req.State == StateDispatched {
		return nil // a re-run: the children exist and run on their own
	}
	if _, err := h.transition(ctx, req, change{state: StateDiscovering, detail: "listing nodes"}); err != nil {
		return err
	}
	nodes, err := h.dcs.ScanTargets(ctx, req.InstanceID)
	if err != nil {
		return h.fail(ctx, req, "ListLogicalNodes", err)
	}
	if len(nodes) == 0 {
		return h.finishFailed(ctx, req, fmt.Errorf("instance %s has no active node to scan", req.InstanceID), "permanent")
	}
	children := make([]string, 0, len(nodes))
	for _, n := range nodes {
		child := &Request{ID: req.ID + "_" + n.NodeID, InstanceID: req.InstanceID, NodeID: n.NodeID,
			CleanCache: req.CleanCache, Origin: req.Origin, Audit: req.Audit, RequestedAt: req.RequestedAt, Parent: req.ID}
		if _, err := h.reqs.Create(ctx, child); err != nil {
			return err
		}
		if err := h.submitTask(ctx, child); err != nil {
			return err
		}
		children = append(children, child.ID)
	}
	_, err = h.transition(ctx, req, change{state: StateDispatched, terminal: false,
		set:    map[string]string{"children": strings.Join(children, ",")},
		detail: fmt.Sprintf("%d node requests submitted", len(children))})
	return err
}

func (h *Handlers) submitTask(ctx context.Context, r *Request) error {
	return submitTask(ctx, h.q, h.cfg, r)
}
