package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// Queues names the asynq queues. Follow-ups (polls, fetches) get the highest
// weight so that requests in flight finish before new scans start.
type Queues struct {
	Followup string // default "dcs-followup"
	Trigger  string // event-triggered requests; default "dcs-trigger"
	Default  string // CLI and demo requests; default "dcs-default"
	Schedule string // scheduled audits; default "dcs-schedule"
}

func (q Queues) withDefaults() Queues {
	if q.Followup == "" {
		q.Followup = "dcs-followup"
	}
	if q.Trigger == "" {
		q.Trigger = "dcs-trigger"
	}
	if q.Default == "" {
		q.Default = "dcs-default"
	}
	if q.Schedule == "" {
		q.Schedule = "dcs-schedule"
	}
	return q
}

// ForOrigin returns the queue of a new request.
func (q Queues) ForOrigin(origin string) string {
	q = q.withDefaults()
	switch origin {
	case OriginTrigger:
		return q.Trigger
	case OriginSchedule:
		return q.Schedule
	}
	return q.Default
}

// Priorities returns asynq's Config.Queues from per-kind weights.
func (q Queues) Priorities(followup, trigger, def, schedule int) map[string]int {
	q = q.withDefaults()
	return map[string]int{q.Followup: followup, q.Trigger: trigger, q.Default: def, q.Schedule: schedule}
}

// Submitter creates requests and enqueues their first task.
type Submitter struct {
	q    Enqueuer
	reqs *Requests
	cfg  Config
	now  func() time.Time
}

// NewSubmitter returns a Submitter; cfg must match the worker's for queues,
// retries and retention.
func NewSubmitter(q Enqueuer, reqs *Requests, cfg Config) *Submitter {
	return &Submitter{q: q, reqs: reqs, cfg: cfg.withDefaults(), now: time.Now}
}

// SubmitOptions describe a query.
type SubmitOptions struct {
	InstanceID string
	// NodeID is the node to scan; empty with AllNodes to scan every node
	// (proxies for proxy-based instances, otherwise every Redis server).
	NodeID     string
	AllNodes   bool
	CleanCache bool
	// Origin is cli, schedule, trigger or demo (default cli).
	Origin string
	// ID, when set, is the request id (deterministic ids make a submission
	// idempotent); default a fresh time-ordered UUID.
	ID string
	// Audit names the scheduled audit submitting the request (its rules are
	// evaluated on the snapshot, and its retention applies).
	Audit string
}

// Validate checks the options without side effects; errors name the value.
func (o SubmitOptions) Validate() error {
	if err := dcsapi.ValidateID("instance id", o.InstanceID); err != nil {
		return err
	}
	switch {
	case o.AllNodes && o.NodeID != "":
		return errors.New("give either a node id or all nodes, not both")
	case !o.AllNodes:
		if err := dcsapi.ValidateID("node id", o.NodeID); err != nil {
			return err
		}
	}
	switch o.Origin {
	case "", OriginCLI, OriginSchedule, OriginTrigger, OriginDemo:
	default:
		return fmt.Errorf("origin %q is invalid: want cli, schedule, trigger or demo", o.Origin)
	}
	if o.ID != "" {
		return ValidateRequestID(o.ID)
	}
	return nil
}

// ErrDuplicateRequest: a request with that id exists already.
var ErrDuplicateRequest = errors.New("a request with this id exists")

// Submit validates o, records the request and enqueues its first task.
func (s *Submitter) Submit(ctx context.Context, o SubmitOptions) (*Request, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Origin == "" {
		o.Origin = OriginCLI
	}
	if o.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		o.ID = strings.ReplaceAll(id.String(), "-", "")
	}
	r := &Request{ID: o.ID, InstanceID: o.InstanceID, NodeID: o.NodeID, AllNodes: o.AllNodes,
		CleanCache: o.CleanCache, Origin: o.Origin, Audit: o.Audit, RequestedAt: s.now().UTC()}
	created, err := s.reqs.Create(ctx, r)
	if err != nil {
		return nil, err
	}
	if !created {
		return nil, fmt.Errorf("%w: %s", ErrDuplicateRequest, o.ID)
	}
	if err := submitTask(ctx, s.q, s.cfg, r); err != nil {
		return nil, fmt.Errorf("request %s recorded but not enqueued: %w", r.ID, err)
	}
	return r, nil
}

// submitTask enqueues the first task of a request (scan, or discover for all
// nodes) with a deterministic id.
func submitTask(ctx context.Context, q Enqueuer, cfg Config, r *Request) error {
	cfg = cfg.withDefaults()
	typ, id := TypeScan, scanTaskID(r.ID)
	if r.AllNodes {
		typ, id = TypeDiscover, discoverTaskID(r.ID)
	}
	_, err := q.EnqueueContext(ctx, newTask(typ, Payload{RequestID: r.ID}), asynq.TaskID(id),
		asynq.Queue(cfg.Queues.ForOrigin(r.Origin)), asynq.MaxRetry(cfg.MaxRetry),
		asynq.Retention(cfg.TaskRetention), asynq.Timeout(5*time.Minute))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

// Status is what a user reads about a request: the record, its events, and
// for an all-nodes request the state of each child with an aggregate state
// (done when every child is done, failed when every child ended and one failed).
type Status struct {
	Request  *Request  `json:"request"`
	Events   []Event   `json:"events,omitempty"`
	Children []Request `json:"children,omitempty"`
}

// State is the request's state, aggregated over children for all-nodes requests.
func (s *Status) State() State {
	if s.Request.State != StateDispatched {
		return s.Request.State
	}
	failed := false
	for _, c := range s.Children {
		if !c.State.Terminal() {
			return StateDispatched
		}
		failed = failed || c.State == StateFailed
	}
	if failed {
		return StateFailed
	}
	return StateDone
}

// Status reads a request with its events and children.
func (r *Requests) Status(ctx context.Context, id string) (*Status, error) {
	req, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	st := &Status{Request: req}
	if st.Events, err = r.Events(ctx, id); err != nil {
		return nil, err
	}
	for _, c := range req.Children {
		cr, err := r.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		st.Children = append(st.Children, *cr)
	}
	return st, nil
}
