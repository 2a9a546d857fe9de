package console

import (
	"net/http"
	"slices"
	"time"

	"github.com/dcsjobs/dcsjobs/tasks"
)

// refreshSeconds is how often a request page in flight reloads itself (a
// <meta> refresh: no JavaScript).
const refreshSeconds = 2

type requestData struct {
	base
	Req         *tasks.Request
	State       tasks.State
	Terminal    bool
	Steps       []step
	Events      []eventRow
	Children    []childRow
	NodeHref    string
	SnapHref    string
	LeaderHref  string
	ParentHref  string
	Took        string
	Done, Fail  int
	InFlight    int
	RequestedAt time.Time
}

// step is one stage of the pipeline as the request went through it.
type step struct {
	Label  string
	Class  string // reached, current, failed, todo
	Detail string
}

type eventRow struct {
	At     time.Time
	Offset string
	State  tasks.State
	Detail string
}

type childRow struct {
	Req      tasks.Request
	Href     string
	NodeHref string
	SnapHref string
}

func (h *handler) request(w http.ResponseWriter, r *http.Request, id string) {
	st, err := h.o.Requests.Status(r.Context(), id)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	q := st.Request
	state := st.State()
	d := requestData{base: h.base("Request "+id, crumb{Label: "Overview", Href: h.prefix}, crumb{Label: "request " + id}),
		Req: q, State: state, Terminal: state.Terminal()}
	if !d.Terminal {
		d.Refresh = refreshSeconds
	}
	if q.NodeID != "" {
		d.NodeHref = h.nodeHref(q.InstanceID, q.NodeID)
		if q.SnapshotID != "" {
			d.SnapHref = query{Snap: q.SnapshotID}.href(d.NodeHref, false)
		}
	}
	if q.Leader != "" && q.Leader != q.ID {
		d.LeaderHref = h.requestHref(q.Leader)
	}
	if q.Parent != "" {
		d.ParentHref = h.requestHref(q.Parent)
	}
	var first time.Time
	for i, ev := range st.Events {
		if i == 0 {
			first = ev.At
		}
		d.Events = append(d.Events, eventRow{At: ev.At, Offset: "+" + fmtOffset(ev.At.Sub(first)), State: ev.State, Detail: ev.Detail})
	}
	if d.Terminal && !q.UpdatedAt.IsZero() && !q.RequestedAt.IsZero() {
		d.Took = fmtOffset(q.UpdatedAt.Sub(q.RequestedAt))
	}
	for _, c := range st.Children {
		row := childRow{Req: c, Href: h.requestHref(c.ID)}
		if c.NodeID != "" {
			row.NodeHref = h.nodeHref(c.InstanceID, c.NodeID)
			if c.SnapshotID != "" {
				row.SnapHref = query{Snap: c.SnapshotID}.href(row.NodeHref, false)
			}
		}
		switch c.State {
		case tasks.StateDone:
			d.Done++
		case tasks.StateFailed:
			d.Fail++
		default:
			d.InFlight++
		}
		d.Children = append(d.Children, row)
	}
	d.Steps = steps(st, state)
	h.render(w, r, http.StatusOK, "request", d)
}

// fmtOffset is a short duration with milliseconds under a minute: "1.234s".
func fmtOffset(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// steps lays out the pipeline's stages for the request's kind and marks
// those it reached from its events.
func steps(st *tasks.Status, state tasks.State) []step {
	q := st.Request
	seen := map[tasks.State]bool{tasks.StateQueued: true}
	for _, ev := range st.Events {
		seen[ev.State] = true
	}
	seen[q.State] = true
	var path []tasks.State
	switch {
	case q.AllNodes:
		path = []tasks.State{tasks.StateQueued, tasks.StateDiscovering, tasks.StateDispatched}
	case seen[tasks.StateAttached]:
		path = []tasks.State{tasks.StateQueued, tasks.StateAttached}
	default:
		path = []tasks.State{tasks.StateQueued, tasks.StateScanning, tasks.StatePolling, tasks.StateFetching}
	}
	end := tasks.StateDone
	if state == tasks.StateFailed {
		end = tasks.StateFailed
	}
	path = append(path, end)
	cur := slices.Index(path, state)
	out := make([]step, len(path))
	for i, s := range path {
		c := "todo"
		switch {
		case s == state && s == tasks.StateFailed:
			c = "failed"
		case s == state && s == tasks.StateDone:
			c = "reached"
		case s == state:
			c = "current"
		case seen[s] || (state != tasks.StateFailed && cur >= 0 && i < cur):
			// Stages before the current one were passed even if their
			// events were trimmed (a record keeps its last 200 events).
			c = "reached"
		}
		out[i] = step{Label: string(s), Class: c}
		if s == tasks.StatePolling && q.Polls > 0 {
			out[i].Detail = pluralPolls(q.Polls)
		}
	}
	return out
}

func pluralPolls(n int) string {
	if n == 1 {
		return "1 poll"
	}
	return fmtInt(n) + " polls"
}
