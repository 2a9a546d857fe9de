package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// historyLimit is how many history entries the node page lists.
const historyLimit = 50

// barsShown is how many keys of a breakdown are shown before "more".
const barsShown = 8

type nodeData struct {
	base
	InstanceID, NodeID string
	NodeHref           string
	Snap               *results.Snapshot
	IsLatest           bool
	Ago, Fresh         string
	RequestHref        string
	CountDiffers       bool
	Breakdowns         []breakdownView
	DiffPrevHref       string
	History            []historyRow
	HistoryMore        bool
	Table              tableView
	QueryAction        string
}

type breakdownView struct {
	Title          string
	Keys           int
	Rows           []barRow
	More           []barRow
	OthersKeys     int
	OthersSessions int
}

type barRow struct {
	Label    string
	Empty    bool // the empty key, shown as (none)
	Sessions int
	Width    string
	Pct      string
	Href     string // the table filtered to this key; "" when not filterable
}

type historyRow struct {
	Meta     results.Meta
	Href     string
	Current  bool
	Ago      string
	Rules    []string
	HasDiff  bool
	New      int
	Gone     int
	Sessions int
}

type tableView struct {
	Cols                               []colHead
	Rows                               [][]cell
	Q                                  query
	Total, Matched, From, To           int
	Page, Pages                        int
	First, Prev, Next, Last, ClearHref string
	Action                             string
	SortLabel                          string
}

type colHead struct {
	Key, Label, Href string
	Sorted, Desc     bool
	Num              bool
}

type cell struct {
	Class string
	Text  string
	Title string
	Num   bool
	V     int64
}

func (h *handler) node(w http.ResponseWriter, r *http.Request, inst, node string) {
	ctx := r.Context()
	q := parseQuery(r.URL.Query())
	if q.Snap != "" && tasks.ValidateRequestID(q.Snap) != nil {
		h.notFound(w, r)
		return
	}
	hist, err := h.o.Store.History(ctx, inst, node, historyLimit+1)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	if len(hist) == 0 {
		h.notFound(w, r)
		return
	}
	more := len(hist) > historyLimit
	hist = hist[:min(len(hist), historyLimit)]
	id := q.Snap
	if id == "" {
		id = hist[0].ID
	}
	e, err := h.snapshot(r, inst, node, id)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	snap := e.snap
	href := h.nodeHref(inst, node)
	now := h.now()
	age := now.Sub(snap.Time())
	d := nodeData{
		base:       h.base("Node "+node, crumb{Label: "Overview", Href: h.prefix}, crumb{Label: inst + " / " + node}),
		InstanceID: inst, NodeID: node, NodeHref: href, Snap: snap, IsLatest: id == hist[0].ID,
		Ago: fmtAgo(age), Fresh: h.freshness(age), RequestHref: h.requestHref(snap.ID),
		CountDiffers: snap.Count != len(snap.Clients), HistoryMore: more,
	}
	if h.trigger {
		d.QueryAction = href + "/query"
	}
	if snap.Diff != nil && snap.Diff.PreviousID != "" {
		d.DiffPrevHref = query{Snap: snap.Diff.PreviousID}.href(href, false)
	}
	for _, m := range hist {
		row := historyRow{Meta: m, Href: query{Snap: m.ID}.href(href, false), Current: m.ID == snap.ID,
			Ago:   fmtAgo(now.Sub((&results.Snapshot{FetchedAt: m.FetchedAt, DCSTime: m.DCSTime, Request: m.Request}).Time())),
			Rules: ruleNames(m.Findings), Sessions: m.Summary.Total}
		if m.Diff != nil {
			row.HasDiff, row.New, row.Gone = true, m.Diff.NewCount, m.Diff.GoneCount
		}
		d.History = append(d.History, row)
	}
	s := snap.Summary
	fq := query{Snap: q.Snap}
	d.Breakdowns = []breakdownView{
		h.breakdown("Client IP", s.ByClientIP, s.Total, func(k string) string {
			if k == "" {
				return ""
			}
			if strings.Contains(k, ":") {
				k = "[" + k + "]"
			}
			f := fq
			f.Addr = k + ":"
			return f.href(href, true)
		}),
		h.breakdown("db", s.ByDB, s.Total, func(k string) string { f := fq; f.DB = k; return filterHref(f, k, href) }),
		h.breakdown("user", s.ByUser, s.Total, func(k string) string { f := fq; f.User = k; return filterHref(f, k, href) }),
		h.breakdown("cmd", s.ByCmd, s.Total, func(k string) string { f := fq; f.Cmd = k; return filterHref(f, k, href) }),
	}
	d.Table = h.table(e, q, href)
	h.render(w, r, http.StatusOK, "node", d)
}

func filterHref(q query, key, href string) string {
	if key == "" {
		return ""
	}
	return q.href(href, true)
}

// snapshot reads a snapshot through the cache.
func (h *handler) snapshot(r *http.Request, inst, node, id string) (*entry, error) {
	key := cacheKey(inst, node, id)
	if e := h.cache.get(key); e != nil {
		return e, nil
	}
	snap, err := h.o.Store.Get(r.Context(), inst, node, id)
	if err != nil {
		return nil, err
	}
	return h.cache.put(key, snap), nil
}

func (h *handler) breakdown(title string, b results.Breakdown, total int, link func(string) string) breakdownView {
	v := breakdownView{Title: title, Keys: b.Keys, OthersKeys: b.OthersKeys, OthersSessions: b.OthersSessions}
	top := 0
	if len(b.Top) > 0 {
		top = b.Top[0].Sessions
	}
	for i, c := range b.Top {
		row := barRow{Label: c.DisplayKey(), Empty: c.Key == "", Sessions: c.Sessions, Width: width(c.Sessions, top),
			Pct: pct(c.Sessions, total), Href: link(c.Key)}
		if i < barsShown {
			v.Rows = append(v.Rows, row)
		} else {
			v.More = append(v.More, row)
		}
	}
	return v
}

// table sorts, filters and pages the sessions of e.
func (h *handler) table(e *entry, q query, href string) tableView {
	rows := e.filter(e.order(q.Sort, q.Desc), q)
	size := h.o.PageSize
	t := tableView{Q: q, Total: len(e.snap.Clients), Matched: len(rows), Action: href}
	t.Pages = max((len(rows)+size-1)/size, 1)
	q.Page = min(q.Page, t.Pages)
	t.Page = q.Page
	lo := (q.Page - 1) * size
	hi := min(lo+size, len(rows))
	if lo < hi {
		t.From, t.To = lo+1, hi
	}
	at := func(p int) string { c := q; c.Page = p; return c.href(href, true) }
	if q.Page > 1 {
		t.First, t.Prev = at(1), at(q.Page-1)
	}
	if q.Page < t.Pages {
		t.Next, t.Last = at(q.Page+1), at(t.Pages)
	}
	t.ClearHref = query{Snap: q.Snap, Sort: q.Sort, Desc: q.Desc}.href(href, true)
	for _, c := range columns {
		ch := colHead{Key: c.Key, Label: c.Label, Num: c.Num, Sorted: q.Sort == c.Key, Desc: q.Sort == c.Key && q.Desc}
		next := q
		next.Page = 1
		next.Sort = c.Key
		if ch.Sorted {
			next.Desc = !q.Desc
		} else {
			next.Desc = c.Num // numbers: biggest first
		}
		ch.Href = next.href(href, true)
		t.Cols = append(t.Cols, ch)
		if ch.Sorted {
			t.SortLabel = c.Label
		}
	}
	cs := e.snap.Clients
	t.Rows = make([][]cell, 0, hi-lo)
	for _, i := range rows[lo:max(lo, hi)] {
		ci := &cs[i]
		r := make([]cell, len(columns))
		for j, c := range columns {
			cl := cell{Class: "c-" + c.Key}
			if c.num != nil {
				v := c.num(ci)
				cl.Num, cl.V = true, v
				cl.Text = strconv.FormatInt(v, 10)
				if c.human {
					cl.Text, cl.Title = fmtSeconds(v), strconv.FormatInt(v, 10)+" s"
				}
			} else {
				cl.Text = c.str(ci)
			}
			r[j] = cl
		}
		t.Rows = append(t.Rows, r)
	}
	return t
}
