package trigger_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/trigger"
)

const (
	inst1 = "11111111-1111-4111-8111-111111111111"
	node1 = "11111111-0000-4000-8000-000000000001"
)

var okBody = `{"instance_id":"` + inst1 + `","node_id":"` + node1 + `"}`

func TestAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	unsub := readFile(t, "testdata/smn/unsubscribe_confirmation.json")
	tests := []struct {
		name string
		r    req
		code int
	}{
		{"no header", req{path: trigger.PathQueries, body: okBody, auth: "-"}, 401},
		{"wrong token", req{path: trigger.PathQueries, body: okBody, auth: "Bearer wrong-token-0123456789x"}, 401},
		{"token with a suffix", req{path: trigger.PathQueries, body: okBody, auth: "Bearer " + testToken + "x"}, 401},
		{"scheme only", req{path: trigger.PathQueries, body: okBody, auth: "Bearer"}, 401},
		{"basic scheme", req{path: trigger.PathQueries, body: okBody, auth: "Basic " + testToken}, 401},
		{"token without scheme", req{path: trigger.PathQueries, body: okBody, auth: testToken}, 401},
		{"right token", req{path: trigger.PathQueries, body: okBody}, 202},
		{"lower-case bearer", req{path: trigger.PathQueries, body: okBody, auth: "bearer " + testToken}, 202},
		{"upper-case BEARER", req{path: trigger.PathQueries, body: okBody, auth: "BEARER " + testToken}, 202},
		{"query token refused on queries", req{path: trigger.PathQueries + "?token=" + testToken, body: okBody, auth: "-"}, 401},
		{"status needs auth", req{method: "GET", path: trigger.PathQueries + "/req1", auth: "-"}, 401},
		{"alertmanager needs auth", req{path: trigger.PathAlertmanager, body: "{}", auth: "-"}, 401},
		{"cloudeye without token", req{path: trigger.PathCloudEye, body: unsub, auth: "-"}, 401},
		{"cloudeye wrong query token", req{path: trigger.PathCloudEye + "?token=nope-nope-nope-nope", body: unsub, auth: "-"}, 401},
		{"cloudeye query token", req{path: trigger.PathCloudEye + "?token=" + testToken, body: unsub, auth: "-"}, 200},
		{"cloudeye bearer", req{path: trigger.PathCloudEye, body: unsub}, 200},
		{"cloudeye wrong bearer beats right query token", req{path: trigger.PathCloudEye + "?token=" + testToken, body: unsub, auth: "Bearer wrong-token-0123456789x"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, tt.r)
			if w.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.code != 401 {
				return
			}
			// Every refusal looks the same: nothing says which part was wrong.
			if got := w.Body.String(); got != "{\n  \"error\": \"unauthorized\"\n}\n" {
				t.Errorf("body %q", got)
			}
			if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
	if n := len(f.subm.submitted()); n != 3 {
		t.Errorf("%d submissions, want 3 (the authorized ones)", n)
	}
}

func TestBadBodies(t *testing.T) {
	t.Parallel()
	many := make([]string, trigger.MaxNodes+1)
	for i := range many {
		many[i] = `"n` + string(rune('a'+i%26)) + `"`
	}
	tests := []struct {
		name, body, want string
	}{
		{"empty", "", "body is empty"},
		{"blank", "  \n", "body is empty"},
		{"not JSON", "instance_id=x", "not valid JSON"},
		{"truncated", `{"instance_id":"` + inst1, "not valid JSON"},
		{"array", `[1,2]`, "must be a JSON object"},
		{"unknown field", `{"instance_id":"` + inst1 + `","node":"x"}`, `unknown field "node"`},
		{"wrong type", `{"instance_id":"` + inst1 + `","all_nodes":"yes"}`, `field "all_nodes" must be a JSON boolean`},
		{"trailing data", okBody + `{}`, "data after the JSON object"},
		{"no instance", `{"node_id":"` + node1 + `"}`, "instance_id is empty"},
		{"invalid instance", `{"instance_id":"../etc","all_nodes":true}`, `instance_id "../etc" is invalid`},
		{"no node", `{"instance_id":"` + inst1 + `"}`, "exactly one of node_id, node_ids or all_nodes"},
		{"node and all nodes", `{"instance_id":"` + inst1 + `","node_id":"` + node1 + `","all_nodes":true}`, "exactly one of"},
		{"node and node_ids", `{"instance_id":"` + inst1 + `","node_id":"a","node_ids":["b"]}`, "exactly one of"},
		{"invalid node", `{"instance_id":"` + inst1 + `","node_id":"a b"}`, `node_id "a b" is invalid`},
		{"invalid node in list", `{"instance_id":"` + inst1 + `","node_ids":["ok","x/y"]}`, `node_ids[1] "x/y" is invalid`},
		{"empty node_ids", `{"instance_id":"` + inst1 + `","node_ids":[]}`, "node_ids is empty"},
		{"too many nodes", `{"instance_id":"` + inst1 + `","node_ids":[` + strings.Join(many, ",") + `]}`, "node_ids has 101 entries, at most 100"},
	}
	f := newFixture(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, req{path: trigger.PathQueries, body: tt.body})
			if w.Code != http.StatusBadRequest {
				t.Fatalf("code %d, want 400: %s", w.Code, w.Body)
			}
			if got := errorOf(t, w); !strings.Contains(got, tt.want) {
				t.Errorf("error %q, want it to contain %q", got, tt.want)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	if n := len(f.subm.submitted()); n != 0 {
		t.Errorf("%d submissions from bad bodies", n)
	}
}

func TestPostQueries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       []tasks.SubmitOptions
	}{
		{"one node", okBody, []tasks.SubmitOptions{{InstanceID: inst1, NodeID: node1, Origin: "trigger"}}},
		{"node list, duplicates dropped", `{"instance_id":"` + inst1 + `","node_ids":["a","b","a"],"clean_cache":true}`,
			[]tasks.SubmitOptions{{InstanceID: inst1, NodeID: "a", CleanCache: true, Origin: "trigger"},
				{InstanceID: inst1, NodeID: "b", CleanCache: true, Origin: "trigger"}}},
		{"all nodes", `{"instance_id":"` + inst1 + `","all_nodes":true}`,
			[]tasks.SubmitOptions{{InstanceID: inst1, AllNodes: true, Origin: "trigger"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			w := f.do(t, req{path: trigger.PathQueries, body: tt.body})
			if w.Code != http.StatusAccepted {
				t.Fatalf("code %d: %s", w.Code, w.Body)
			}
			got := f.subm.submitted()
			if len(got) != len(tt.want) {
				t.Fatalf("submitted %+v, want %+v", got, tt.want)
			}
			resp := decode[trigger.SubmitResponse](t, w)
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("submission %d: %+v, want %+v", i, got[i], tt.want[i])
				}
				r := resp.Requests[i]
				if r.ID == "" || r.StatusURL != "/api/v1/queries/"+r.ID || r.InstanceID != inst1 || r.NodeID != tt.want[i].NodeID ||
					r.AllNodes != tt.want[i].AllNodes {
					t.Errorf("answer %d: %+v", i, r)
				}
			}
		})
	}
	t.Run("submit fails", func(t *testing.T) {
		f := newFixture(t, nil)
		f.subm.err = errors.New("redis: connection refused")
		w := f.do(t, req{path: trigger.PathQueries, body: okBody})
		if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "redis") {
			t.Fatalf("code %d, body %s (want 500 without internals)", w.Code, w.Body)
		}
	})
}

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *trigger.Options) { o.MaxBody = 1024 })
	pad := func(n int) string { // a valid query padded with spaces to n bytes
		return okBody + strings.Repeat(" ", n-len(okBody))
	}
	tests := []struct {
		name, path, body string
		code             int
	}{
		{"at the limit", trigger.PathQueries, pad(1024), 202},
		{"one byte over", trigger.PathQueries, pad(1025), 413},
		{"far over", trigger.PathQueries, pad(1 << 20), 413},
		{"alertmanager over", trigger.PathAlertmanager, strings.Repeat("x", 2000), 413},
		{"cloudeye over", trigger.PathCloudEye, strings.Repeat("x", 2000), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, req{path: tt.path, body: tt.body})
			if w.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.code == 413 {
				if got := errorOf(t, w); got != "body larger than 1024 bytes" {
					t.Errorf("error %q", got)
				}
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	f := newFixture(t, func(o *trigger.Options) {
		o.Rate, o.Burst = rate.Limit(1), 2
		o.Now = func() time.Time { return now }
	})
	steps := []struct {
		name   string
		remote string
		auth   string
		code   int
	}{
		{"first, unauthenticated", "192.0.2.1:1000", "-", 401},
		{"second, wrong token", "192.0.2.1:1001", "Bearer wrong-token-0123456789x", 401},
		{"third, even with the right token", "192.0.2.1:1002", "", 429},
		{"another client", "192.0.2.2:1000", "", 202},
	}
	for _, s := range steps {
		w := f.do(t, req{path: trigger.PathQueries, body: okBody, remote: s.remote, auth: s.auth})
		if w.Code != s.code {
			t.Fatalf("%s: code %d, want %d: %s", s.name, w.Code, s.code, w.Body)
		}
		if s.code == 429 {
			if ra := w.Header().Get("Retry-After"); ra != "1" {
				t.Errorf("%s: Retry-After %q, want 1", s.name, ra)
			}
			if got := errorOf(t, w); got != "too many requests" {
				t.Errorf("%s: error %q", s.name, got)
			}
		}
	}
	now = now.Add(time.Second) // one token back
	if w := f.do(t, req{path: trigger.PathQueries, body: okBody, remote: "192.0.2.1:1003"}); w.Code != 202 {
		t.Fatalf("after a second: code %d", w.Code)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", trigger.PathQueries, 405, "POST"},
		{"PUT", trigger.PathQueries, 405, "POST"},
		{"POST", trigger.PathQueries + "/req1", 405, "GET"},
		{"DELETE", trigger.PathQueries + "/req1", 405, "GET"},
		{"POST", trigger.PathQueries + "/req1/result", 405, "GET"},
		{"GET", trigger.PathAlertmanager, 405, "POST"},
		{"GET", trigger.PathCloudEye, 405, "POST"},
		{"GET", "/api/v1/nothing", 404, ""},
		{"GET", trigger.PathQueries + "/req1/other", 404, ""},
	}
	for _, tt := range tests {
		w := f.do(t, req{method: tt.method, path: tt.path})
		if w.Code != tt.code || w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s: code %d Allow %q, want %d %q", tt.method, tt.path, w.Code, w.Header().Get("Allow"), tt.code, tt.allow)
		}
		if w.Code >= 400 && errorOf(t, w) == "" {
			t.Errorf("%s %s: no error reason", tt.method, tt.path)
		}
	}
}

func TestNewHandlerErrors(t *testing.T) {
	t.Parallel()
	base := func() trigger.Options {
		return trigger.Options{Token: testToken, Submitter: &fakeSubmitter{}, Reader: &fakeReader{}}
	}
	tests := []struct {
		name string
		mod  func(*trigger.Options)
		want string
	}{
		{"no token", func(o *trigger.Options) { o.Token = "" }, "token is empty"},
		{"short token", func(o *trigger.Options) { o.Token = "short" }, "token is 5 characters long"},
		{"no submitter", func(o *trigger.Options) { o.Submitter = nil }, "Submitter and Reader are required"},
		{"no reader", func(o *trigger.Options) { o.Reader = nil }, "Submitter and Reader are required"},
	}
	for _, tt := range tests {
		o := base()
		tt.mod(&o)
		if _, err := trigger.NewHandler(o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestLoadToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  "+testToken+"\n")
	short := write("short", "abc\n")
	empty := write("empty", "\n")
	tests := []struct {
		name, env, file, want, err string
	}{
		{"off", "", "", "", ""},
		{"env", testToken, "", testToken, ""},
		{"env trimmed", " " + testToken + "\n", "", testToken, ""},
		{"file", "", good, testToken, ""},
		{"both", testToken, good, "", "either TRIGGER_TOKEN or TRIGGER_TOKEN_FILE, not both"},
		{"short env", "abc", "", "", "TRIGGER_TOKEN is 3 characters long, want at least 16"},
		{"short file", "", short, "", "TRIGGER_TOKEN_FILE " + short + " is 3 characters long"},
		{"empty file", "", empty, "", "TRIGGER_TOKEN_FILE " + empty + " is empty"},
		{"missing file", "", filepath.Join(dir, "nope"), "", "TRIGGER_TOKEN_FILE: open"},
		{"inner space", "abcdefgh ijklmnopq", "", "", "TRIGGER_TOKEN contains whitespace"},
	}
	for _, tt := range tests {
		got, err := trigger.LoadToken(tt.env, tt.file)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "abc") && tt.name != "missing file" {
				t.Errorf("%s: error %q shows the token", tt.name, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	f := newFixture(t, func(o *trigger.Options) { o.Registerer = reg })
	f.do(t, req{path: trigger.PathQueries, body: okBody})
	f.do(t, req{path: trigger.PathQueries, body: okBody})
	f.do(t, req{path: trigger.PathQueries, body: okBody, auth: "-"})
	f.do(t, req{method: "GET", path: trigger.PathQueries + "/unknown"})
	f.do(t, req{method: "GET", path: "/api/v1/x/y/z"})
	want := `
# HELP dcsjobs_trigger_requests_total Requests to the trigger API by endpoint and HTTP status code.
# TYPE dcsjobs_trigger_requests_total counter
dcsjobs_trigger_requests_total{code="202",endpoint="queries"} 2
dcsjobs_trigger_requests_total{code="401",endpoint="queries"} 1
dcsjobs_trigger_requests_total{code="404",endpoint="other"} 1
dcsjobs_trigger_requests_total{code="404",endpoint="status"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "dcsjobs_trigger_requests_total"); err != nil {
		t.Error(err)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}
