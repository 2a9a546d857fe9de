package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/robfig/cron/v3"

	"github.com/dcsjobs/dcsjobs/audit"
	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
)

// TypeAudit is the periodic tick of one scheduled audit. Every worker
// replica's scheduler enqueues it; the requests it submits have ids
// deterministic per audit, slot and node, so each slot is audited once.
const TypeAudit = "dcs:audit"

// AuditPayload is the body of a TypeAudit task.
type AuditPayload struct {
	Audit string `json:"audit"`
}

// NewAuditTask returns the tick task of an audit.
func NewAuditTask(name string) *asynq.Task {
	b, _ := json.Marshal(AuditPayload{Audit: name})
	return asynq.NewTask(TypeAudit, b)
}

// AuditSource gives the audit configuration in force (it may be reloaded).
type AuditSource interface {
	Current() *audit.Config
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Slot returns the slot of a schedule that now falls in: for "@every d" the
// start of the d-long period (aligned to the Unix epoch, so that replicas
// whose schedulers started at different times agree), otherwise the latest
// activation of the cron spec at or before now.
func Slot(schedule string, now time.Time) (time.Time, error) {
	s, err := cronParser.Parse(schedule)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule %q: %w", schedule, err)
	}
	if every, ok := s.(cron.ConstantDelaySchedule); ok {
		return now.Truncate(max(every.Delay, time.Second)), nil
	}
	// Look back in growing windows, so that frequent specs stay cheap.
	for _, back := range []time.Duration{2 * time.Minute, 2 * time.Hour, 50 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		var last time.Time
		for t := s.Next(now.Add(-back)); !t.IsZero() && !t.After(now); t = s.Next(t) {
			last = t
		}
		if !last.IsZero() {
			return last, nil
		}
	}
	return time.Time{}, fmt.Errorf("schedule %q: no activation in the last year", schedule)
}

// auditRequestID is deterministic per audit, slot and node.
func auditRequestID(name string, slot time.Time, node string) string {
	return "a_" + name + "_" + strconv.FormatInt(slot.Unix(), 10) + "_" + node
}

// ProcessAudit submits one request per node of a scheduled audit for the
// current slot. A node whose previous scan is still running is skipped for
// this slot (and the skip counted); a slot already submitted (by another
// replica's tick) is left alone; ticks that waited in the queue map to the
// current slot, so missed slots never pile up.
func (h *Handlers) ProcessAudit(ctx context.Context, t *asynq.Task) error {
	var p AuditPayload
	dec := json.NewDecoder(bytes.NewReader(t.Payload()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Audit == "" {
		return fmt.Errorf("%w: malformed %s payload %.80q", asynq.SkipRetry, t.Type(), t.Payload())
	}
	if h.audits == nil {
		return fmt.Errorf("%w: audit %q: this worker has no audit configuration", asynq.SkipRetry, p.Audit)
	}
	a, ok := h.audits.Current().Audit(p.Audit)
	if !ok {
		h.log.Info().Str("audit", p.Audit).Msg("audit no longer configured; tick ignored")
		return nil
	}
	now := h.now()
	slot, err := Slot(a.Schedule, now)
	if err != nil {
		return fmt.Errorf("%w: audit %q: %v", asynq.SkipRetry, a.Name, err)
	}
	nodes := a.Nodes
	if a.AllNodes {
		targets, err := h.dcs.ScanTargets(ctx, a.Instance)
		if err != nil {
			return h.auditError(a.Name, err)
		}
		nodes = nodes[:0:0]
		for _, n := range targets {
			nodes = append(nodes, n.NodeID)
		}
	}
	submitted, skipped := 0, 0
	for _, node := range nodes {
		id := auditRequestID(a.Name, slot, node)
		if r, err := h.reqs.Get(ctx, id); err == nil {
			// Submitted already (another replica's tick, or an earlier run of
			// this one). A record still queued may have lost its task to an
			// error between the two writes: enqueueing is idempotent.
			if r.State == StateQueued {
				if err := h.submitTask(ctx, r); err != nil {
					return err
				}
			}
			continue
		} else if !errors.Is(err, ErrRequestNotFound) {
			return err
		}
		if cur, err := h.reqs.InFlight(ctx, a.Instance, node); err != nil {
			return err
		} else if cur != "" {
			skipped++
			h.obs.AuditSkipped(a.Name)
			h.log.Info().Str("audit", a.Name).Str("node", node).Str("running", cur).Time("slot", slot).
				Msg("previous scan of the node still running; slot skipped")
			continue
		}
		r := &Request{ID: id, InstanceID: a.Instance, NodeID: node, CleanCache: a.CleanCache,
			Origin: OriginSchedule, Audit: a.Name, RequestedAt: now.UTC()}
		created, err := h.reqs.Create(ctx, r)
		if err != nil {
			return err
		}
		if !created {
			continue
		}
		if err := h.submitTask(ctx, r); err != nil {
			return err
		}
		submitted++
		h.obs.AuditSubmitted(a.Name)
	}
	if submitted > 0 || skipped > 0 {
		h.log.Info().Str("audit", a.Name).Time("slot", slot).Int("submitted", submitted).Int("skipped", skipped).
			Msg("audit slot")
	}
	return nil
}

func (h *Handlers) auditError(name string, err error) error {
	switch dcsapi.Classify(err) {
	case dcsapi.ClassThrottled:
		d, ok := dcsapi.RetryAfter(err)
		if !ok {
			d = h.cfg.Backoff.Delay(0)
		}
		return &throttledError{Delay: d, Err: err}
	case dcsapi.ClassPermanent:
		h.log.Warn().Str("audit", name).Err(err).Msg("audit cannot list the instance's nodes")
		return fmt.Errorf("%w: audit %q: %v", asynq.SkipRetry, name, err)
	}
	return err
}

// auditFor returns the audit whose rules apply to a request: its own, or
// else the first audit covering the node.
func (h *Handlers) auditFor(req *Request) *audit.Audit {
	if h.audits == nil {
		return nil
	}
	cfg := h.audits.Current()
	if cfg == nil {
		return nil
	}
	if req.Audit != "" {
		if a, ok := cfg.Audit(req.Audit); ok {
			return a
		}
	}
	for i := range cfg.Audits {
		if cfg.Audits[i].Covers(req.InstanceID, req.NodeID) {
			return &cfg.Audits[i]
		}
	}
	return nil
}

// evaluate applies the request's audit rules to a snapshot (maxClients: the
// instance's, 0 when unknown) and logs when the set of violated rules differs
// from the previous snapshot's. It returns the audit's retention (0: default).
func (h *Handlers) evaluate(req *Request, snap *results.Snapshot, prev *results.Snapshot, maxClients int64) time.Duration {
	a := h.auditFor(req)
	if a == nil {
		return 0
	}
	snap.Findings = a.Evaluate(snap.Clients, snap.Diff, maxClients)
	var before []string
	if prev != nil {
		before = ruleNames(prev.Findings)
	}
	if now := ruleNames(snap.Findings); !slices.Equal(before, now) {
		h.log.Warn().Str("request", req.ID).Str("instance", req.InstanceID).Str("node", req.NodeID).
			Str("audit", a.Name).Strs("violated", now).Strs("before", before).
			Msg("audit findings changed: " + findingsText(snap.Findings))
	}
	return a.Retention
}

func ruleNames(fs []results.Finding) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	slices.Sort(out)
	return out
}

func findingsText(fs []results.Finding) string {
	if len(fs) == 0 {
		return "no rule violated"
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Rule + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}
