package console

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dcsjobs/dcsjobs/results"
)

// Freshness classes of an audit's age (see Options.AuditInterval).
const (
	fresh = "fresh" // younger than 2 intervals
	late  = "late"  // younger than 3 intervals
	stale = "stale" // older
)

func (h *handler) freshness(age time.Duration) string {
	switch {
	case age < 2*h.o.AuditInterval:
		return fresh
	case age < 3*h.o.AuditInterval:
		return late
	}
	return stale
}

type overviewRow struct {
	InstanceID, NodeID string
	Href               string
	Meta               *results.Meta
	Time               time.Time
	Ago                string
	Fresh              string
	Rules              []string
}

type overviewData struct {
	base
	Rows                  []overviewRow
	Fresh, Late, Stale    int
	Instances             int
	Sessions, IdleOver    int
	FindingNodes          int
	IntervalText          string
	LateAfter, StaleAfter string
}

// summaryReaders bounds the concurrent LatestSummary reads of the overview.
const summaryReaders = 8

func (h *handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	refs, err := h.o.Store.Nodes(ctx)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	metas := make([]*results.Meta, len(refs))
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, summaryReaders)
	for i, ref := range refs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			metas[i], errs[i] = h.o.Store.LatestSummary(ctx, ref.InstanceID, ref.NodeID)
		})
	}
	wg.Wait()
	now := h.now()
	d := overviewData{base: h.base("Overview"), IntervalText: fmtSeconds(int64(h.o.AuditInterval / time.Second)),
		LateAfter: fmtSeconds(int64(2 * h.o.AuditInterval / time.Second)), StaleAfter: fmtSeconds(int64(3 * h.o.AuditInterval / time.Second))}
	instances := map[string]bool{}
	for i, ref := range refs {
		if errors.Is(errs[i], results.ErrNotFound) {
			continue // expired since Nodes listed it
		}
		if errs[i] != nil {
			h.storeError(w, r, errs[i])
			return
		}
		m := metas[i]
		t := (&results.Snapshot{FetchedAt: m.FetchedAt, DCSTime: m.DCSTime, Request: m.Request}).Time()
		age := now.Sub(t)
		row := overviewRow{InstanceID: ref.InstanceID, NodeID: ref.NodeID, Href: h.nodeHref(ref.InstanceID, ref.NodeID),
			Meta: m, Time: t, Ago: fmtAgo(age), Fresh: h.freshness(age), Rules: ruleNames(m.Findings)}
		switch row.Fresh {
		case fresh:
			d.Fresh++
		case late:
			d.Late++
		default:
			d.Stale++
		}
		instances[ref.InstanceID] = true
		d.Sessions += m.Summary.Total
		d.IdleOver += m.Summary.IdleOver
		if len(m.Findings) > 0 {
			d.FindingNodes++
		}
		d.Rows = append(d.Rows, row)
	}
	d.Instances = len(instances)
	// Oldest audit first: what needs attention is on top.
	slices.SortFunc(d.Rows, func(a, b overviewRow) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.InstanceID, b.InstanceID), strings.Compare(a.NodeID, b.NodeID))
	})
	h.render(w, r, http.StatusOK, "overview", d)
}

// ruleNames are the distinct rules of findings, in order of appearance.
func ruleNames(fs []results.Finding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.Rule) {
			out = append(out, f.Rule)
		}
	}
	return out
}
