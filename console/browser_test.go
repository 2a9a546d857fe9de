package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/dcsjobs/dcsjobs/console"
	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testenv"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// chromium finds the browser: $CHROMIUM, else chromium, chromium-browser or
// google-chrome on PATH. Without one the browser tests skip, unless CI is
// set: there a missing browser is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set but no Chromium was found: apt-get install -y chromium (or set CHROMIUM to its path)")
	}
	t.Skip("no Chromium found (apt-get install -y chromium, or set CHROMIUM); browser tests skipped")
	return ""
}

// newBrowser starts a headless Chromium that makes no network connection of
// its own (without these flags it hangs on an offline machine), with an empty
// profile, for the duration of the test.
func newBrowser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		t.Fatalf("start %s: %v", exe, err)
	}
	return ctx
}

// Nodes of the browser test besides the simulator's.
const (
	fakeInst  = "99999999-9999-4999-8999-999999999999"
	xssNode   = "xss-node"
	lateNode  = "late-node"
	staleNode = "stale-node"
	xssName   = `<script>alert(1)</script>`
	xssCmd    = `"><img src=x onerror=alert(1)>`
)

// TestBrowser runs the console against a worker with stored audits in a real
// headless Chromium. SCREENSHOTS=1 also writes ../docs/screenshots/*.png.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: not in -short")
	}
	exe := chromium(t)

	// A worker and three audits: two of the single node (a history with a
	// diff) and one of the 12,000-session master.
	e := testenv.New(t, dcssim.Config{})
	e.StartWorker()
	ha := e.Submit(tasks.SubmitOptions{InstanceID: dcssim.HAInstanceID, NodeID: dcssim.HAMasterNodeID, Origin: tasks.OriginCLI})
	s1 := e.Submit(testenv.Single())
	e.Wait(s1.ID, time.Minute)
	s2 := e.Submit(testenv.Single())
	for _, id := range []string{s2.ID, ha.ID} {
		if st := e.Wait(id, time.Minute); st.State() != tasks.StateDone {
			t.Fatalf("request %s: %s %s", id, st.State(), st.Request.Error)
		}
	}
	store := results.NewStore(e.Redis.Client(), results.StoreOptions{Prefix: e.Cfg.KeyPrefix, Retention: e.Cfg.Retention, HistoryMax: e.Cfg.HistoryMax})
	saveFake(t, store)

	h, err := console.NewHandler(console.Options{Store: store, Requests: e.Reqs})
	if err != nil {
		t.Fatal(err)
	}
	// The same console with the "query now" form, under another prefix.
	const token = "browser-test-token-0123456789"
	rw, err := console.NewHandler(console.Options{Prefix: "/rw/", Store: store, Requests: e.Reqs, Submit: e.Subm.Submit, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(console.DefaultPrefix, h)
	mux.Handle("/rw/", rw)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base := srv.URL + console.DefaultPrefix
	singleURL := base + "nodes/" + dcssim.SingleInstanceID + "/" + dcssim.SingleNodeID
	haURL := base + "nodes/" + dcssim.HAInstanceID + "/" + dcssim.HAMasterNodeID

	ctx := newBrowser(t, exe)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	// Any dialog (alert, confirm, prompt) means a script ran: record and close it.
	var mu sync.Mutex
	var dialogs []string
	evs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range evs {
			if err != nil {
				return
			}
			mu.Lock()
			dialogs = append(dialogs, ev.Message)
			mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()

	do := func(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	// follow clicks a link or button and waits for the page it loads.
	follow := func(t *testing.T, sel string) {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
		if resp.Status != http.StatusOK {
			t.Fatalf("click %s: HTTP %d", sel, resp.Status)
		}
	}
	texts := func(t *testing.T, sel string) []string {
		t.Helper()
		return eval[[]string](t, ctx, `Array.from(document.querySelectorAll(`+jsString(sel)+`), e => e.textContent.trim())`)
	}
	count := func(t *testing.T, sel string) int {
		t.Helper()
		return eval[int](t, ctx, `document.querySelectorAll(`+jsString(sel)+`).length`)
	}

	t.Run("overview", func(t *testing.T) {
		do(t, chromedp.Navigate(base))
		nodes := texts(t, "table.overview tbody td:nth-child(3)")
		want := []string{staleNode, lateNode} // oldest first; the rest are fresh
		if len(nodes) != 5 || !slices.Equal(nodes[:2], want) {
			t.Fatalf("overview nodes %q, want 5 starting with %q", nodes, want)
		}
		for _, n := range []string{dcssim.SingleNodeID, dcssim.HAMasterNodeID, xssNode} {
			if !slices.Contains(nodes, n) {
				t.Errorf("overview lacks node %s", n)
			}
		}
		if got := texts(t, "table.overview .badge"); !strings.HasSuffix(got[0], "ago") {
			t.Errorf("age badges %q", got)
		}
		if n := count(t, ".badge.stale"); n != 1 {
			t.Errorf("%d stale badges, want 1", n)
		}
		// The stylesheet loads under the CSP.
		if bg := eval[string](t, ctx, `getComputedStyle(document.querySelector('header.top')).backgroundColor`); bg != "rgb(23, 35, 58)" {
			t.Errorf("header background %q: stylesheet not applied", bg)
		}
		if n := count(t, "script"); n != 0 {
			t.Errorf("%d script elements", n)
		}
		shoot(t, ctx, "overview", 1440, 600)
	})

	t.Run("node sorts and filters", func(t *testing.T) {
		do(t, chromedp.Navigate(haURL))
		if got := texts(t, "#sessions h2 .count"); len(got) != 1 || got[0] != "12,000" {
			t.Errorf("session count %q, want 12,000", got)
		}
		follow(t, "#sort-idle") // a numeric column sorts descending first
		idle := eval[[]int64](t, ctx, `Array.from(document.querySelectorAll('td.c-idle'), td => Number(td.dataset.v))`)
		if len(idle) != console.DefaultPageSize {
			t.Fatalf("%d rows, want %d", len(idle), console.DefaultPageSize)
		}
		if !slices.IsSortedFunc(idle, func(a, b int64) int { return int(b - a) }) || idle[0] == idle[len(idle)-1] {
			t.Errorf("idle not descending: %v", idle[:10])
		}
		if loc := eval[string](t, ctx, `location.search`); !strings.Contains(loc, "sort=idle") || !strings.Contains(loc, "order=desc") {
			t.Errorf("location %q", loc)
		}
		// Filter by a name substring, in another case than the data's.
		do(t, chromedp.SetValue(chromedp.ID("f-name"), "ORDERS"))
		follow(t, "#f-apply")
		names := texts(t, "td.c-name")
		if len(names) == 0 {
			t.Fatal("the name filter matched nothing")
		}
		for _, n := range names {
			if !strings.Contains(strings.ToLower(n), "orders") {
				t.Errorf("row with name %q does not match the filter", n)
			}
		}
		// The sort survived the filter.
		idle = eval[[]int64](t, ctx, `Array.from(document.querySelectorAll('td.c-idle'), td => Number(td.dataset.v))`)
		if !slices.IsSortedFunc(idle, func(a, b int64) int { return int(b - a) }) {
			t.Errorf("filtered rows not sorted by idle: %v", idle[:min(10, len(idle))])
		}
		// Page 2 of the filtered, sorted rows.
		follow(t, `a[rel="next"]`)
		if loc := eval[string](t, ctx, `location.search`); !strings.Contains(loc, "page=2") || !strings.Contains(loc, "name=ORDERS") {
			t.Errorf("next page location %q", loc)
		}
	})

	t.Run("history shows the diff", func(t *testing.T) {
		do(t, chromedp.Navigate(singleURL))
		if n := count(t, "#history tbody tr"); n != 2 {
			t.Errorf("%d history entries, want 2", n)
		}
		tags := texts(t, "#diff .tag")
		if len(tags) < 2 || !strings.HasPrefix(tags[0], "+") || !strings.HasSuffix(tags[0], "new") ||
			!strings.HasPrefix(tags[1], "−") || !strings.HasSuffix(tags[1], "gone") || tags[0] == "+0 new" || tags[1] == "−0 gone" {
			t.Errorf("diff tags %q, want new and gone clients", tags)
		}
		if got := texts(t, "#diff details.difflist summary"); len(got) != 2 ||
			!strings.HasPrefix(got[0], "New clients") || !strings.HasPrefix(got[1], "Gone clients") {
			t.Errorf("diff lists %q", got)
		}
		if n := count(t, "#diff details.difflist tbody tr"); n < 2 {
			t.Errorf("%d clients in the diff lists", n)
		}
		if os.Getenv("SCREENSHOTS") == "1" {
			do(t, chromedp.Navigate(singleURL+"?sort=idle&order=desc"))
			shoot(t, ctx, "node", 1440, 1900)
			do(t, chromedp.Navigate(singleURL))
		}
		// The older entry: the first audit, nothing to compare with.
		follow(t, "#history tbody tr:nth-child(2) a")
		if got := texts(t, "p.notice"); len(got) != 1 || !strings.Contains(got[0], s1.ID) {
			t.Errorf("notice %q, want the older snapshot %s", got, s1.ID)
		}
		if got := texts(t, "#diff p"); len(got) != 1 || !strings.Contains(got[0], "first snapshot") {
			t.Errorf("diff of the first snapshot: %q", got)
		}
	})

	t.Run("request", func(t *testing.T) {
		do(t, chromedp.Navigate(base+"requests/"+s2.ID))
		if got := texts(t, ".titlebar .badge"); len(got) != 1 || got[0] != "done" {
			t.Errorf("state %q, want done", got)
		}
		steps := texts(t, "ol.steps li.reached .stepname")
		if !slices.Equal(steps, []string{"queued", "scanning", "polling", "fetching", "done"}) {
			t.Errorf("reached steps %q", steps)
		}
		states := texts(t, "table.timeline td:nth-child(3)")
		if len(states) < 5 || states[0] != "queued" || states[len(states)-1] != "done" {
			t.Errorf("timeline %q", states)
		}
		shoot(t, ctx, "request", 1440, 680)
		follow(t, `dd a[href*="snapshot="]`)
		if got := texts(t, "#history tr.current td:first-child a"); len(got) != 1 {
			t.Errorf("the request's snapshot is not the current history entry: %q", got)
		}
	})

	t.Run("query now", func(t *testing.T) {
		rwNode := srv.URL + "/rw/nodes/" + dcssim.SingleInstanceID + "/" + dcssim.SingleNodeID
		do(t, chromedp.Navigate(rwNode))
		// A wrong token: 403, nothing submitted.
		do(t, chromedp.SetValue(chromedp.CSS(`input[name="token"]`), "wrong-token"))
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(".queryform button")))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusForbidden {
			t.Errorf("wrong token: HTTP %d, want 403", resp.Status)
		}
		// The right one: the browser's own form passes the same-origin
		// checks (it sends Origin: null under Referrer-Policy no-referrer)
		// and lands on the new request's page, which refreshes until done.
		do(t, chromedp.Navigate(rwNode),
			chromedp.SetValue(chromedp.CSS(`input[name="token"]`), token))
		follow(t, ".queryform button")
		loc := eval[string](t, ctx, `location.pathname`)
		id, ok := strings.CutPrefix(loc, "/rw/requests/")
		if !ok {
			t.Fatalf("after the query: %s, want a request page", loc)
		}
		st := e.Wait(id, time.Minute)
		if st.Request.Origin != tasks.OriginTrigger || st.State() != tasks.StateDone {
			t.Errorf("submitted request: origin %s, state %s", st.Request.Origin, st.State())
		}
		// The page reloads itself every 2 s until the request has ended.
		deadline := time.Now().Add(10 * time.Second)
		for {
			state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.titlebar .badge')?.textContent ?? ''`))
			if err == nil && state == "done" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("request page still says %q (%v)", state, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	})

	t.Run("xss stays text", func(t *testing.T) {
		do(t, chromedp.Navigate(base+"nodes/"+fakeInst+"/"+xssNode))
		names := texts(t, "td.c-name")
		if !slices.Contains(names, xssName) {
			t.Errorf("names %q lack %q as text", names, xssName)
		}
		if cmds := texts(t, "td.c-cmd"); !slices.Contains(cmds, xssCmd) {
			t.Errorf("cmds %q lack %q as text", cmds, xssCmd)
		}
		// Filtering by the script's text reflects it into the form, escaped.
		do(t, chromedp.SetValue(chromedp.ID("f-name"), xssName))
		follow(t, "#f-apply")
		if got := texts(t, "td.c-name"); !slices.Equal(got, []string{xssName}) {
			t.Errorf("filtered names %q", got)
		}
		if v := eval[string](t, ctx, `document.getElementById('f-name').value`); v != xssName {
			t.Errorf("filter field %q", v)
		}
		for sel, want := range map[string]int{"script": 0, "img": 0, "svg": 0, "[onerror]": 0, "[onload]": 0} {
			if n := count(t, sel); n != want {
				t.Errorf("%d %s elements, want %d", n, sel, want)
			}
		}
		time.Sleep(200 * time.Millisecond) // a dialog would have opened by now
		mu.Lock()
		defer mu.Unlock()
		if len(dialogs) > 0 {
			t.Errorf("JavaScript dialogs opened: %q", dialogs)
		}
	})
}

// saveFake stores snapshots of fake nodes: one whose sessions carry script,
// one audited 35 minutes ago (late) and one 50 minutes ago (stale), with
// findings.
func saveFake(t *testing.T, store *results.Store) {
	t.Helper()
	now := time.Now().UTC()
	mk := func(node, id string, at time.Time, clients []dcsapi.ClientInfo) *results.Snapshot {
		s := &results.Snapshot{ID: id, Request: results.Request{ID: id, InstanceID: fakeInst, NodeID: node,
			Origin: results.OriginSchedule, Audit: "hourly", RequestedAt: at.Add(-2 * time.Second)},
			Job: results.Job{ID: "job-" + id, Status: "SUCCESS", BeginTime: at.Add(-2 * time.Second), EndTime: at.Add(-time.Second),
				CompletionPath: results.CompletedByShowJob, Polls: 1},
			DCSTime: at.Add(-time.Second), FetchedAt: at, Count: len(clients), Clients: clients,
			Summary: results.Summarize(clients, results.SummaryOptions{})}
		return s
	}
	evil := cl("66", "10.6.6.6:6666", xssName, `' onmouseover='alert(1)`, "0", xssCmd, 5, 5)
	xss := mk(xssNode, "xss1", now.Add(-time.Minute), append(genClients(20), evil))
	xss.Findings = []results.Finding{{Audit: "hourly", Rule: "new_clients", Message: "1 new client: " + xssName, Count: 1, Examples: []string{evil.Addr}}}
	late := mk(lateNode, "late1", now.Add(-35*time.Minute), genClients(180))
	late.Findings = []results.Finding{{Audit: "hourly", Rule: "idle_sessions", Message: "42 sessions idle longer than 30m (max 10)", Count: 42}}
	stale := mk(staleNode, "stale1", now.Add(-50*time.Minute), genClients(90))
	stale.Findings = []results.Finding{{Audit: "hourly", Rule: "sessions_per_client_ip", Message: "3 client IPs with more than 20 sessions", Count: 3,
		Examples: []string{"10.0.0.1", "10.1.0.2", "10.2.0.3"}}, {Audit: "hourly", Rule: "client_outside_cidrs", Message: "2 clients outside 10.0.0.0/8", Count: 2}}
	for _, s := range []*results.Snapshot{xss, late, stale} {
		if err := store.Save(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// jsString quotes a CSS selector for JavaScript (the tests' selectors have
// no backslashes or quotes of this kind).
func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// shoot writes a PNG of the page, width × height CSS pixels, to
// ../docs/screenshots/name.png when SCREENSHOTS=1.
func shoot(t *testing.T, ctx context.Context, name string, width, height int64) {
	t.Helper()
	if os.Getenv("SCREENSHOTS") != "1" {
		return
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatal(err)
	}
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.ResetViewport()); err != nil {
		t.Fatal(err)
	}
}
