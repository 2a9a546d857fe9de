package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// tableClients are the sessions of the table tests, in DCS order: ids
// 9 10 11 2 100 3 4.
var tableClients = []dcsapi.ClientInfo{
	cl("9", "10.0.0.9:5000", "orders-api-1", "default", "0", "get", 100, 5),
	cl("10", "10.0.0.10:5000", "Session-Cache-2", "app_rw", "1", "set", 500, 700),
	cl("11", "10.0.0.1:6000", "", "default", "10", "GET", 50, 50),
	cl("2", "10.0.0.1:5000", "session-cache-1", "readonly", "1", "ping", 900, 900),
	cl("100", "172.16.0.1:4000", "billing", "app_rw", "0", "brpop", 10, 0),
	cl("3", "[::1]:7000", "orders-api-2", "default", "0", "hgetall", 300, 300),
	cl("4", "10.0.0.11:5000", "cache-warmer", "app_rw", "1", "get", 200, 120),
}

func TestSessionTable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) { o.PageSize = 3 })
	f.save(instA, nodeA, "s1", t0.Add(-time.Minute), tableClients, nil)
	base := f.prefix + "nodes/" + instA + "/" + nodeA
	tests := []struct {
		name  string
		query string
		ids   []string // the page's rows
		text  string   // also on the page
	}{
		{"DCS order, page 1", "", []string{"9", "10", "11"}, "rows 1–3 of 7"},
		{"page 2", "page=2", []string{"2", "100", "3"}, "rows 4–6 of 7"},
		{"last page", "page=3", []string{"4"}, "page 3 of 3"},
		{"page past the end is the last", "page=99", []string{"4"}, "rows 7–7 of 7"},
		{"bad page is the first", "page=abc", []string{"9", "10", "11"}, "page 1 of 3"},
		{"negative page is the first", "page=-2", []string{"9", "10", "11"}, "page 1 of 3"},
		{"idle desc", "sort=idle&order=desc", []string{"2", "10", "3"}, "Sorted by idle, descending"},
		{"idle desc page 2", "sort=idle&order=desc&page=2", []string{"4", "11", "9"}, ""},
		{"idle asc", "sort=idle&order=asc", []string{"100", "9", "11"}, "Sorted by idle, ascending"},
		{"order defaults to asc", "sort=age", []string{"100", "11", "9"}, ""},
		{"id numeric", "sort=id", []string{"2", "3", "4"}, ""},
		{"id numeric desc", "sort=id&order=desc", []string{"100", "11", "10"}, ""},
		{"addr by IP then port", "sort=addr", []string{"2", "11", "9"}, ""},
		{"addr by IP, IPv6 last", "sort=addr&page=3", []string{"3"}, ""},
		{"db numeric", "sort=db&order=desc", []string{"11", "10", "2"}, ""},
		{"name case-insensitive substring", "name=CACHE", []string{"10", "2", "4"}, "3 of 7"},
		{"name filter sorted", "name=cache&sort=idle&order=desc", []string{"2", "10", "4"}, ""},
		{"addr prefix", "addr=10.0.0.1:", []string{"11", "2"}, "2 of 7"},
		{"db exact", "db=1", []string{"10", "2", "4"}, ""},
		{"cmd any case, substring", "cmd=get", []string{"9", "11", "3"}, "4 of 7"},
		{"user and cmd", "user=app_rw&cmd=GET", []string{"4"}, ""},
		{"user substring", "user=APP", []string{"10", "100", "4"}, ""},
		{"filter with paging", "name=a&page=2", []string{"3", "4"}, "rows 4–5 of 5"},
		{"unknown sort is DCS order", "sort=bogus&order=desc", []string{"9", "10", "11"}, "In DCS order"},
		{"no match", "name=nomatch", nil, "No session matches."},
		{"older snapshot by id", "snapshot=s1&sort=id", []string{"2", "3", "4"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := f.mustGet(base + "?" + tc.query)
			if got := cells(body, "id"); !slices.Equal(got, tc.ids) {
				t.Errorf("ids %v, want %v", got, tc.ids)
			}
			if tc.text != "" {
				mustContain(t, body, tc.text)
			}
		})
	}
}

func TestSessionTableSortLinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.save(instA, nodeA, "s1", t0.Add(-time.Minute), tableClients, nil)
	base := f.prefix + "nodes/" + instA + "/" + nodeA
	body := f.mustGet(base + "?name=cache&page=1")
	// A numeric column's first click sorts descending, a text column's
	// ascending; filters are kept, the page is reset.
	mustContain(t, body,
		`name=cache&amp;order=desc&amp;sort=idle#sessions" id="sort-idle"`,
		`name=cache&amp;order=asc&amp;sort=name#sessions" id="sort-name"`)
	body = f.mustGet(base + "?sort=idle&order=desc")
	mustContain(t, body, `order=asc&amp;sort=idle#sessions"`, "idle ▼")
	// Every one of the 21 DCS fields has a sortable column.
	if n := strings.Count(body, `id="sort-`); n != 21 {
		t.Errorf("%d sortable columns, want 21", n)
	}
	for _, c := range columns {
		b := f.mustGet(base + "?sort=" + c.Key + "&order=desc")
		if got := cells(b, "id"); len(got) != len(tableClients) {
			t.Errorf("sort=%s: %d rows", c.Key, len(got))
		}
	}
}

func TestOverview(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	clients := genClients(40)
	f.save(instA, nodeA, "a1", t0.Add(-2*time.Minute), clients, nil)
	f.save(instA, nodeB, "b1", t0.Add(-40*time.Minute), clients[:10], nil)
	x := f.save(instX, nodeX, "x1", t0.Add(-3*time.Hour), clients[:5], nil)
	x.ID, x.Findings = "x2", []results.Finding{{Audit: "nightly", Rule: "idle_sessions", Message: "5 idle", Count: 5},
		{Audit: "nightly", Rule: "new_clients", Message: "2 new", Count: 2}, {Audit: "other", Rule: "idle_sessions", Count: 1}}
	x.FetchedAt = t0.Add(-2 * time.Hour)
	x.Request.ID = "x2"
	if err := f.store.Save(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	body := f.mustGet(f.prefix)
	// Oldest first: x (2h), b (40m), a (2m).
	ix, ib, ia := strings.Index(body, ">"+nodeX+"<"), strings.Index(body, ">"+nodeB+"<"), strings.Index(body, ">"+nodeA+"<")
	if ix < 0 || ib < 0 || ia < 0 || !(ix < ib && ib < ia) {
		t.Errorf("order of nodes: x %d, b %d, a %d; want oldest audit first", ix, ib, ia)
	}
	mustContain(t, body,
		`<tr class="row-stale">`, `<span class="badge stale" title="`+fmtTime(t0.Add(-2*time.Hour))+`">2h00m ago</span>`,
		`<span class="badge late" title="`+fmtTime(t0.Add(-40*time.Minute))+`">40m ago</span>`,
		`<span class="badge fresh" title="`+fmtTime(t0.Add(-2*time.Minute))+`">2m ago</span>`,
		`href="/console/nodes/`+instA+`/`+nodeA+`"`,
		`<span class="tag warn">idle_sessions</span> <span class="tag warn">new_clients</span>`,
		"<b>3</b><span>nodes in 2 instances</span>", "<b>55</b><span>sessions</span>",
		"nodes with findings", "read-only")
	if n := strings.Count(body, "idle_sessions"); n != 1 {
		t.Errorf("rule idle_sessions listed %d times, want once", n)
	}
}

func TestOverviewEmpty(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	mustContain(t, f.mustGet(f.prefix), "No node has been audited yet")
}

func TestNodePage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c1 := genClients(300)
	c2 := append(slices.Clone(c1[5:]), cl("9001", "10.9.9.9:1234", "newcomer", "default", "0", "get", 3, 1))
	s1 := f.save(instA, nodeA, "s1", t0.Add(-20*time.Minute), c1, nil)
	s2 := f.save(instA, nodeA, "s2", t0.Add(-5*time.Minute), c2, s1)
	s2.Findings = []results.Finding{{Audit: "nightly", Rule: "client_outside_cidrs", Message: "1 client outside the allowed CIDRs",
		Count: 1, Examples: []string{"10.9.9.9:1234"}}}
	if err := f.store.Save(context.Background(), s2); err != nil {
		t.Fatal(err)
	}
	base := f.prefix + "nodes/" + instA + "/" + nodeA
	body := f.mustGet(base)
	mustContain(t, body,
		`<h1>Node <span class="mono">node-a</span></h1>`, "audited 5m ago",
		`<a href="/console/requests/s2">s2</a>`, "job-s2", "show-job after 2 polls",
		fmtTime(t0.Add(-5*time.Minute)), // fetched
		"By Client IP", "By db", "By user", "By cmd", `class="fill w100"`,
		"client_outside_cidrs", "<code>10.9.9.9:1234</code>",
		// diff of the latest against s1
		`<span class="tag add">+1 new</span>`, `<span class="tag del">−5 gone</span>`, "295 unchanged",
		`href="/console/nodes/`+instA+`/`+nodeA+`?snapshot=s1"`, "newcomer",
		"Gone clients (5)", "New clients (1)",
		// history: both entries, the latest current with its counts
		`<tr class="current">`, `<td class="n add">+1</td><td class="n del">−5</td>`, `colspan="2">first</td>`,
		"rows 1–100 of 296", "page 1 of 3")
	mustNotContain(t, body, "older snapshot", `<form class="queryform"`)
	// The breakdown keys filter the table.
	mustContain(t, body, `href="/console/nodes/`+instA+`/`+nodeA+`?cmd=hgetall#sessions"`)
	if !regexp.MustCompile(`href="/console/nodes/[^"?]+\?addr=10\.\d+\.\d+\.\d+%3A#sessions"`).MatchString(body) {
		t.Error("no client IP links to the table filtered by addr")
	}

	// An older entry: its own sessions, and a notice.
	body = f.mustGet(base + "?snapshot=s1")
	mustContain(t, body, "older snapshot", "first snapshot of the node", "rows 1–100 of 300")
	if r := f.get(base + "?snapshot=nope"); r.code != http.StatusNotFound {
		t.Errorf("unknown snapshot: %d, want 404", r.code)
	}
	if r := f.get(base + "?snapshot=" + url.QueryEscape("../s1")); r.code != http.StatusNotFound {
		t.Errorf("bad snapshot id: %d, want 404", r.code)
	}
}

// TestXSS: every value from DCS is text, wherever it is shown (table, diff,
// breakdowns, findings, overview, reflected filters).
func TestXSS(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	const (
		name = `<script>alert(1)</script>`
		cmd  = `"><img src=x onerror=alert(1)>`
		user = `' onmouseover='alert(1)`
	)
	evil := cl("666", "10.6.6.6:666", name, user, "0", cmd, 5, 5)
	evil.Flags, evil.Peer, evil.Events = `<svg onload=alert(1)>`, `javascript:alert(1)`, `<b>r</b>`
	s1 := f.save(instA, nodeA, "s1", t0.Add(-10*time.Minute), genClients(3), nil)
	s2 := f.save(instA, nodeA, "s2", t0.Add(-time.Minute), append(genClients(3), evil), s1)
	s2.Findings = []results.Finding{{Audit: "<i>audit</i>", Rule: "new_clients", Message: "new: " + name, Examples: []string{cmd}}}
	s2.Request.Audit = "<i>audit</i>"
	if err := f.store.Save(context.Background(), s2); err != nil {
		t.Fatal(err)
	}
	base := f.prefix + "nodes/" + instA + "/" + nodeA
	for _, path := range []string{
		f.prefix,
		base,
		base + "?sort=name&name=" + url.QueryEscape(name),
		base + "?cmd=" + url.QueryEscape(cmd) + "&user=" + url.QueryEscape(user),
	} {
		body := f.mustGet(path)
		low := strings.ToLower(body)
		for _, bad := range []string{"<script", "<img", "<svg", "<b>r", "<i>audit", "onmouseover='", `href="javascript`} {
			if strings.Contains(low, bad) {
				i := strings.Index(low, bad)
				t.Errorf("GET %s: unescaped %q: …%s…", path, bad, body[max(i-80, 0):min(i+80, len(body))])
			}
		}
		if path == f.prefix {
			continue
		}
		mustContain(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")
	}
	body := f.mustGet(base + "?name=" + url.QueryEscape(name))
	if got := cells(body, "name"); !slices.Equal(got, []string{"&lt;script&gt;alert(1)&lt;/script&gt;"}) {
		t.Errorf("filtered names %q", got)
	}
	// The reflected filter value is an escaped attribute value.
	mustContain(t, body, `name="name" value="&lt;script&gt;alert(1)&lt;/script&gt;"`)
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.save(instA, nodeA, "s1", t0, genClients(3), nil)
	if _, err := f.reqs.Create(context.Background(), &tasks.Request{ID: "r1", InstanceID: instA, NodeID: nodeA, Origin: "cli"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	}
	for _, tc := range []struct {
		method, path string
		code         int
		ctype        string
	}{
		{"GET", f.prefix, 200, "text/html; charset=utf-8"},
		{"HEAD", f.prefix, 200, "text/html; charset=utf-8"},
		{"GET", f.prefix + "nodes/" + instA + "/" + nodeA, 200, "text/html; charset=utf-8"},
		{"GET", f.prefix + "requests/r1", 200, "text/html; charset=utf-8"},
		{"GET", f.prefix + "assets/console.css", 200, "text/css; charset=utf-8"},
		{"GET", f.prefix + "assets/favicon.svg", 200, "image/svg+xml"},
		{"GET", f.prefix + "nope", 404, "text/html; charset=utf-8"},
		{"GET", f.prefix + "assets/nope.js", 404, ""},
		{"POST", f.prefix, 405, "text/html; charset=utf-8"},
		{"DELETE", f.prefix + "nodes/" + instA + "/" + nodeA, 405, "text/html; charset=utf-8"},
	} {
		r := f.do(tc.method, tc.path, nil, nil)
		if r.code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, r.code, tc.code)
		}
		if tc.ctype != "" && r.hdr.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, r.hdr.Get("Content-Type"), tc.ctype)
		}
		for k, v := range want {
			if got := r.hdr.Get(k); got != v {
				t.Errorf("%s %s: %s %q, want %q", tc.method, tc.path, k, got, v)
			}
		}
		if tc.code == 405 && r.hdr.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, r.hdr.Get("Allow"))
		}
	}
	// No page refers to a script or to anything off the console.
	for _, p := range []string{f.prefix, f.prefix + "nodes/" + instA + "/" + nodeA, f.prefix + "requests/r1"} {
		body := f.mustGet(p)
		mustNotContain(t, body, "<script", "http://", "https://", ` style="`)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.save(instA, nodeA, "s1", t0, genClients(3), nil)
	long := strings.Repeat("a", 65)
	for _, p := range []string{
		"/elsewhere",
		f.prefix + "nodes/",
		f.prefix + "nodes/" + instA,
		f.prefix + "nodes/" + instA + "/",
		f.prefix + "nodes/" + instA + "/" + nodeA + "/",
		f.prefix + "nodes/" + instA + "/" + nodeA + "/extra",
		f.prefix + "nodes/" + instA + "/" + nodeA + "/query", // read-only: GET finds nothing
		f.prefix + "nodes/" + instA + "/bad.id",
		f.prefix + "nodes/bad%20id/" + nodeA,
		f.prefix + "nodes/" + instA + "/" + url.PathEscape("a/b"),
		f.prefix + "nodes/" + long + "/" + nodeA,
		f.prefix + "nodes/" + instA + "/unknown-node", // valid, no snapshots
		f.prefix + "requests/",
		f.prefix + "requests/no-such-request",
		f.prefix + "requests/bad.id",
		f.prefix + "requests/" + url.PathEscape("<script>"),
		f.prefix + "requests/" + strings.Repeat("r", 129),
		f.prefix + "assets/",
	} {
		r := f.get(p)
		if r.code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.code)
			continue
		}
		mustContain(t, r.body, "404 · Not found")
	}
	// The prefix without its slash redirects to it.
	if r := f.get("/console"); r.code != http.StatusMovedPermanently || r.hdr.Get("Location") != "/console/" {
		t.Errorf("GET /console: %d %q", r.code, r.hdr.Get("Location"))
	}
}

func TestStoreDown(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	var mu sync.Mutex
	var errs []error
	h, err := NewHandler(Options{Store: results.NewStore(rdb, results.StoreOptions{}), Requests: tasks.NewRequests(rdb, "", 0),
		OnError: func(_ *http.Request, err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, h: h, prefix: DefaultPrefix}
	for _, p := range []string{"/console/", "/console/nodes/" + instA + "/" + nodeA, "/console/requests/r1"} {
		r := f.get(p)
		if r.code != http.StatusServiceUnavailable {
			t.Errorf("GET %s: %d, want 503", p, r.code)
		}
		mustContain(t, r.body, "503 · Store unavailable")
		mustNotContain(t, r.body, "127.0.0.1:1", "connection refused")
		if r.hdr.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no CSP", p)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 3 {
		t.Errorf("OnError called %d times, want 3", len(errs))
	}
}

func TestRequestPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	for _, r := range []*tasks.Request{
		{ID: "queued1", InstanceID: instA, NodeID: nodeA, Origin: "cli"},
		{ID: "done1", InstanceID: instA, NodeID: nodeA, Origin: "trigger", State: tasks.StateDone},
		{ID: "all1", InstanceID: instA, AllNodes: true, Origin: "schedule", Audit: "<b>nightly</b>", State: tasks.StateDiscovering},
	} {
		if _, err := f.reqs.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	body := f.mustGet(f.prefix + "requests/queued1")
	mustContain(t, body, `<meta http-equiv="refresh" content="2">`, `<span class="badge state-queued">queued</span>`,
		`<a href="/console/nodes/`+instA+`/`+nodeA+`">`+nodeA+`</a>`, "submitted",
		`<li class="current"><span class="stepname">queued</span>`, `<li class="todo"><span class="stepname">scanning</span>`,
		`<li class="todo"><span class="stepname">done</span>`)
	body = f.mustGet(f.prefix + "requests/done1")
	mustNotContain(t, body, `http-equiv="refresh"`)
	mustContain(t, body, `<li class="reached"><span class="stepname">done</span>`, "trigger")
	body = f.mustGet(f.prefix + "requests/all1")
	mustContain(t, body, "all nodes", `<span class="stepname">discovering</span>`, `<span class="stepname">dispatched</span>`,
		"&lt;b&gt;nightly&lt;/b&gt;")
}

func TestSteps(t *testing.T) {
	t.Parallel()
	at := t0
	ev := func(states ...tasks.State) []tasks.Event {
		var out []tasks.Event
		for i, s := range states {
			out = append(out, tasks.Event{At: at.Add(time.Duration(i) * time.Second), State: s})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		st   tasks.Status
		want string
	}{
		{"done", tasks.Status{Request: &tasks.Request{State: tasks.StateDone, Polls: 3},
			Events: ev("queued", "scanning", "polling", "fetching", "done")},
			"queued:reached scanning:reached polling:reached(3 polls) fetching:reached done:reached"},
		{"polling", tasks.Status{Request: &tasks.Request{State: tasks.StatePolling, Polls: 1},
			Events: ev("queued", "scanning", "polling")},
			"queued:reached scanning:reached polling:current(1 poll) fetching:todo done:todo"},
		{"failed while polling", tasks.Status{Request: &tasks.Request{State: tasks.StateFailed, Polls: 2},
			Events: ev("queued", "scanning", "polling", "failed")},
			"queued:reached scanning:reached polling:reached(2 polls) fetching:todo failed:failed"},
		{"attached", tasks.Status{Request: &tasks.Request{ID: "b", Leader: "a", State: tasks.StateDone},
			Events: ev("queued", "attached", "done")},
			"queued:reached attached:reached done:reached"},
		{"all nodes dispatched", tasks.Status{Request: &tasks.Request{AllNodes: true, State: tasks.StateDispatched},
			Events: ev("queued", "discovering", "dispatched"), Children: []tasks.Request{{State: tasks.StateDone}, {State: tasks.StatePolling}}},
			"queued:reached discovering:reached dispatched:current done:todo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range steps(&tc.st, tc.st.State()) {
				x := s.Label + ":" + s.Class
				if s.Detail != "" {
					x += "(" + s.Detail + ")"
				}
				got = append(got, x)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("steps\n got %s\nwant %s", g, tc.want)
			}
		})
	}
}

func TestQueryForm(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token-0123456789"
	var mu sync.Mutex
	var calls []tasks.SubmitOptions
	fail := false
	f := newFixture(t, func(o *Options) {
		o.Token = token
		o.Submit = func(_ context.Context, so tasks.SubmitOptions) (*tasks.Request, error) {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return nil, errors.New("redis down at 10.1.1.1")
			}
			calls = append(calls, so)
			return &tasks.Request{ID: "new-request-1"}, nil
		}
	})
	f.save(instA, nodeA, "s1", t0, genClients(3), nil)
	node := f.prefix + "nodes/" + instA + "/" + nodeA
	body := f.mustGet(node)
	mustContain(t, body, `<form class="queryform" method="post" action="`+node+`/query">`, `type="password" name="token"`, "queries enabled")
	mustNotContain(t, body, token)

	post := func(form url.Values, hdr map[string]string) resp {
		return f.do(http.MethodPost, node+"/query", strings.NewReader(form.Encode()), hdr)
	}
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  map[string]string
		code int
	}{
		{"no token", url.Values{}, nil, 403},
		{"empty token", url.Values{"token": {""}}, nil, 403},
		{"wrong token", url.Values{"token": {"s3cret-token-012345678"}}, nil, 403},
		{"token with a suffix", url.Values{"token": {token + "x"}}, nil, 403},
		{"cross-site fetch", url.Values{"token": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"other origin", url.Values{"token": {token}}, map[string]string{"Origin": "https://evil.example"}, 403},
		{"other referer", url.Values{"token": {token}}, map[string]string{"Referer": "https://evil.example/x"}, 403},
	} {
		r := post(tc.form, tc.hdr)
		if r.code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, r.code, tc.code)
		}
		mustContain(t, r.body, "403 · Forbidden", "The query was refused.")
	}
	if len(calls) != 0 {
		t.Fatalf("Submit called on refused posts: %+v", calls)
	}
	for i, hdr := range []map[string]string{
		nil,
		{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, // what a browser sends with Referrer-Policy no-referrer
		{"Origin": "http://example.com", "Referer": "http://example.com" + node},
	} {
		r := post(url.Values{"token": {token}, "clean_cache": {"1"}}, hdr)
		if r.code != http.StatusSeeOther || r.hdr.Get("Location") != f.prefix+"requests/new-request-1" {
			t.Errorf("right token %d: %d %q, want 303 to the request", i, r.code, r.hdr.Get("Location"))
		}
	}
	mu.Lock()
	want := tasks.SubmitOptions{InstanceID: instA, NodeID: nodeA, CleanCache: true, Origin: tasks.OriginTrigger}
	if len(calls) != 3 || calls[0] != want {
		t.Errorf("Submit calls %+v, want 3 × %+v", calls, want)
	}
	fail = true
	mu.Unlock()
	r := post(url.Values{"token": {token}}, nil)
	if r.code != http.StatusServiceUnavailable || strings.Contains(r.body, "10.1.1.1") {
		t.Errorf("failing Submit: %d\n%s", r.code, r.body)
	}
	if r := f.get(node + "/query"); r.code != http.StatusMethodNotAllowed || r.hdr.Get("Allow") != "POST" {
		t.Errorf("GET query: %d Allow %q", r.code, r.hdr.Get("Allow"))
	}
	if r := f.do(http.MethodPost, f.prefix+"nodes/"+instA+"/bad.id/query", strings.NewReader("token="+token), nil); r.code != 404 {
		t.Errorf("POST query of a bad node id: %d", r.code)
	}
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.save(instA, nodeA, "s1", t0, genClients(3), nil)
	node := f.prefix + "nodes/" + instA + "/" + nodeA
	body := f.mustGet(node)
	mustNotContain(t, body, "<form class=\"queryform\"", `method="post"`, "token")
	mustContain(t, body, "read-only")
	for _, p := range []string{node + "/query", node, f.prefix} {
		r := f.do(http.MethodPost, p, strings.NewReader("token=x"), nil)
		if r.code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", p, r.code)
		}
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	st, rq := results.NewStore(rdb, results.StoreOptions{}), tasks.NewRequests(rdb, "", 0)
	submit := func(context.Context, tasks.SubmitOptions) (*tasks.Request, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		o    Options
		want string // error substring; "" ok
	}{
		{"ok", Options{Store: st, Requests: rq}, ""},
		{"no store", Options{Requests: rq}, "required"},
		{"no requests", Options{Store: st}, "required"},
		{"submit without token", Options{Store: st, Requests: rq, Submit: submit}, "Token is empty"},
		{"relative prefix", Options{Store: st, Requests: rq, Prefix: "console/"}, "starting with '/'"},
		{"prefix with a quote", Options{Store: st, Requests: rq, Prefix: `/c"/`}, "starting with '/'"},
		{"page size too big", Options{Store: st, Requests: rq, PageSize: 5000}, "out of range"},
	} {
		_, err := NewHandler(tc.o)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// A prefix without its trailing slash gets one, and every link uses it.
	f := newFixture(t, func(o *Options) { o.Prefix = "/ops/dcs" })
	f.save(instA, nodeA, "s1", t0, genClients(3), nil)
	body := f.mustGet("/ops/dcs/")
	mustContain(t, body, `href="/ops/dcs/assets/console.css"`, `href="/ops/dcs/nodes/`+instA+`/`+nodeA+`"`)
	hrefs := regexp.MustCompile(`(?:href|action)="([^"]*)"`).FindAllStringSubmatch(f.mustGet("/ops/dcs/nodes/"+instA+"/"+nodeA), -1)
	for _, m := range hrefs {
		if !strings.HasPrefix(m[1], "/ops/dcs/") {
			t.Errorf("link %q outside the prefix", m[1])
		}
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got, want string
	}{
		{fmtSeconds(0), "0s"}, {fmtSeconds(59), "59s"}, {fmtSeconds(61), "1m01s"}, {fmtSeconds(600), "10m"}, {fmtSeconds(3600), "1h"},
		{fmtSeconds(3659), "1h"}, {fmtSeconds(3660), "1h01m"}, {fmtSeconds(90061), "1d01h"}, {fmtSeconds(86400 + 59), "1d"}, {fmtAgo(3 * time.Second), "3s ago"}, {fmtAgo(3 * time.Minute), "3m ago"},
		{fmtAgo(125 * time.Minute), "2h05m ago"}, {fmtAgo(72 * time.Hour), "3d ago"}, {fmtAgo(-time.Minute), "in the future"},
		{fmtInt(0), "0"}, {fmtInt(999), "999"}, {fmtInt(1000), "1,000"}, {fmtInt(-1234567), "-1,234,567"},
		{width(0, 10), "w0"}, {width(1, 1000), "w1"}, {width(5, 10), "w50"}, {width(10, 10), "w100"}, {width(3, 0), "w0"},
		{pct(1, 8), "12.5%"}, {pct(1, 0), "0%"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"9", "10", -1}, {"010", "9", 1}, {"10", "10", 0}, {"a", "9", 1}, {"a", "b", -1},
	} {
		if got := compareNumeric(tc.a, tc.b); got != tc.want {
			t.Errorf("compareNumeric(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	now := t0
	c := newSnapCache(10*time.Second, 100, func() time.Time { return now })
	snap := func(n int) *results.Snapshot { return &results.Snapshot{Clients: make([]dcsapi.ClientInfo, n)} }
	c.put("a", snap(60))
	if c.get("a") == nil {
		t.Fatal("a not cached")
	}
	c.put("b", snap(60)) // over the budget: a goes
	if c.get("a") != nil || c.get("b") == nil || c.sessions != 60 {
		t.Errorf("after b: a %v, b %v, sessions %d", c.get("a") != nil, c.get("b") != nil, c.sessions)
	}
	c.put("huge", snap(101)) // bigger than the budget: served, not kept
	if c.get("huge") != nil || c.get("b") == nil {
		t.Error("huge cached, or b evicted for it")
	}
	now = now.Add(11 * time.Second)
	if c.get("b") != nil || c.sessions != 0 {
		t.Errorf("b not expired; sessions %d", c.sessions)
	}
}
