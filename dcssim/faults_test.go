package dcssim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Faults: Faults{RateLimit: 2, RetryAfter: 3}})
	for i := 0; i < 2; i++ {
		if r := e.do("GET", p("/instances"), ""); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := e.do("GET", p("/instances"), "")
	wantError(t, r, 429, "APIGW.0308", "The throttling threshold has been reached: policy user over ratelimit,limit:2,time:1 second")
	if got := r.header.Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After %q", got)
	}
	e.clock.Advance(500 * time.Millisecond) // refills one token
	if r := e.do("GET", p("/instances"), ""); r.status != 200 {
		t.Fatalf("after refill: %d", r.status)
	}
	if r := e.do("GET", p("/instances"), ""); r.status != 429 {
		t.Fatalf("bucket empty again: %d", r.status)
	}
	// Without RetryAfter there is no header; raising the limit restarts the bucket.
	if err := e.sim.SetFaults(Faults{RateLimit: 1}); err != nil {
		t.Fatal(err)
	}
	e.do("GET", p("/instances"), "")
	r = e.do("GET", p("/instances"), "")
	if r.status != 429 || r.header.Get("Retry-After") != "" {
		t.Fatalf("%d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if st := e.sim.Stats(); st.Statuses[429] != 3 {
		t.Errorf("429s counted: %d", st.Statuses[429])
	}
}

func TestFailNextAndOps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		code   string
	}{{0, "DCS.5000"}, {500, "DCS.5000"}, {502, "APIGW.0202"}, {503, "APIGW.0201"}}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Config{Faults: Faults{FailNext: 2, FailNextStatus: tt.status, Ops: []string{OpScanClients}}})
			if r := e.do("GET", p("/instances"), ""); r.status != 200 {
				t.Fatalf("other op affected: %d", r.status)
			}
			want := tt.status
			if want == 0 {
				want = 500
			}
			for i := 0; i < 2; i++ {
				r := e.do("POST", clientsPath(SingleInstanceID), `{"node_id":"`+SingleNodeID+`"}`)
				wantError(t, r, want, tt.code, "")
			}
			if f := e.sim.Faults(); f.FailNext != 0 {
				t.Fatalf("FailNext left: %d", f.FailNext)
			}
			if st := e.sim.Stats(); st.Jobs != 0 {
				t.Fatal("a failed request started a job")
			}
			e.scan(SingleInstanceID, SingleNodeID)
		})
	}
}

func TestErrorShare(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Seed: 11, Faults: Faults{ErrorShare: 1}})
	seen := map[int]string{}
	for i := 0; i < 40; i++ {
		r := e.do("GET", p("/instances"), "")
		seen[r.status] = r.str("error_code")
	}
	want := map[int]string{500: "DCS.5000", 502: "APIGW.0202", 503: "APIGW.0201"}
	if len(seen) != len(want) {
		t.Fatalf("statuses %v", seen)
	}
	for s, c := range want {
		if seen[s] != c {
			t.Errorf("status %d: code %q, want %q", s, seen[s], c)
		}
	}
	// A share in between fails some, not all.
	if err := e.sim.SetFaults(Faults{ErrorShare: 0.3}); err != nil {
		t.Fatal(err)
	}
	fails := 0
	for i := 0; i < 200; i++ {
		if r := e.do("GET", p("/instances"), ""); r.status >= 500 {
			fails++
		}
	}
	if fails < 30 || fails > 90 {
		t.Errorf("%d of 200 failed at share 0.3", fails)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Faults: Faults{Latency: Duration(80 * time.Millisecond), Ops: []string{OpShowInstance}}})
	start := time.Now()
	e.do("GET", p("/instances/"+SingleInstanceID), "")
	if el := time.Since(start); el < 80*time.Millisecond {
		t.Fatalf("latency %v", el)
	}
	start = time.Now()
	e.do("GET", p("/instances"), "")
	if el := time.Since(start); el >= 80*time.Millisecond {
		t.Fatalf("op not listed but delayed %v", el)
	}
}

func TestBrokenBodies(t *testing.T) {
	t.Parallel()
	t.Run("truncated", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{Faults: Faults{TruncateShare: 1}})
		req, _ := http.NewRequest("GET", e.ts.URL+p("/instances"), nil)
		signer0(e, req)
		res, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read err %v (got %d bytes)", err, len(b))
		}
		if json.Valid(b) {
			t.Fatal("truncated body is valid JSON")
		}
	})
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{Faults: Faults{MalformedShare: 1}})
		r := e.do("POST", clientsPath(SingleInstanceID), `{"node_id":"`+SingleNodeID+`"}`)
		if r.status != 200 || !strings.HasPrefix(string(r.raw), "<html>") || json.Valid(r.raw) ||
			r.header.Get("Content-Type") != "text/html" {
			t.Fatalf("%d %q %s", r.status, r.header.Get("Content-Type"), r.raw)
		}
		// The request took effect although its answer was garbage.
		if st := e.sim.Stats(); st.Jobs != 1 {
			t.Fatalf("jobs %d", st.Jobs)
		}
		e.sim.SetFaults(Faults{})
		wantError(t, e.do("POST", clientsPath(SingleInstanceID), `{"node_id":"`+SingleNodeID+`"}`), 400, "DCS.4957", "")
	})
}

func TestJobFaults(t *testing.T) {
	t.Parallel()
	t.Run("slow jobs", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{Faults: Faults{JobDuration: Duration(time.Minute)}})
		id := e.scan(SingleInstanceID, SingleNodeID)
		e.clock.Advance(30 * time.Second)
		if r := e.do("GET", p("/jobs/"+id), ""); r.str("status") != "RUNNING" {
			t.Fatalf("%s", r.raw)
		}
		e.clock.Advance(30 * time.Second)
		if r := e.do("GET", p("/jobs/"+id), ""); r.str("status") != "SUCCESS" {
			t.Fatalf("%s", r.raw)
		}
	})
	t.Run("node job duration", func(t *testing.T) {
		t.Parallel()
		inv := DefaultInventory()
		inv.Instances[0].Nodes[0].JobDuration = Duration(10 * time.Second)
		e := newEnv(t, Config{Inventory: inv})
		id := e.scan(SingleInstanceID, SingleNodeID)
		e.clock.Advance(9 * time.Second)
		if r := e.do("GET", p("/jobs/"+id), ""); r.str("status") != "RUNNING" {
			t.Fatalf("%s", r.raw)
		}
	})
	t.Run("jobs unknown", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{Faults: Faults{JobsUnknown: true}})
		id := e.scan(SingleInstanceID, SingleNodeID)
		wantError(t, e.do("GET", p("/jobs/"+id), ""), 404, "DCS.5101", "The job does not exist.")
		e.clock.Advance(DefaultJobDuration)
		wantError(t, e.do("GET", p("/jobs/"+id), ""), 404, "DCS.5101", "")
		if _, r := e.list(SingleInstanceID, SingleNodeID, ""); r.status != 200 {
			t.Fatalf("ListClients: %d %s", r.status, r.raw)
		}
	})
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	admin := func(method, path, body string) reply {
		req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
		return e.send(req)
	}
	r := admin("PUT", "/_sim/faults", `{"rate_limit":5,"latency":"10ms","ops":["ListClients"],"fail_next":1,"jobs_unknown":true}`)
	if r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.raw)
	}
	f := e.sim.Faults()
	if f.RateLimit != 5 || time.Duration(f.Latency) != 10*time.Millisecond || f.FailNext != 1 || !f.JobsUnknown || f.Ops[0] != OpListClients {
		t.Fatalf("faults %+v", f)
	}
	if r := admin("GET", "/_sim/faults", ""); r.str("latency") != "10ms" {
		t.Fatalf("GET: %s", r.raw)
	}
	tests := []struct{ name, body, want string }{
		{"unknown field", `{"rate_limt":5}`, "rate_limt"},
		{"bad share", `{"error_share":1.5}`, "error_share"},
		{"bad duration", `{"latency":5}`, "duration"},
		{"bad op", `{"ops":["Nope"]}`, "Nope"},
		{"bad status", `{"fail_next_status":404}`, "fail_next_status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := admin("PUT", "/_sim/faults", tt.body)
			if r.status != 400 || !strings.Contains(r.str("error"), tt.want) {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
	if e.sim.Faults().RateLimit != 5 {
		t.Fatal("a rejected PUT changed the faults")
	}
	e.scan(SingleInstanceID, SingleNodeID)
	r = admin("GET", "/_sim/stats", "")
	if r.status != 200 || !strings.Contains(string(r.raw), `"ScanClients":1`) || !strings.Contains(string(r.raw), ScanKey(SingleInstanceID, SingleNodeID)) {
		t.Fatalf("stats: %s", r.raw)
	}
	if r := admin("GET", "/_sim/inventory", ""); r.status != 200 || !strings.Contains(string(r.raw), HAMasterNodeID) {
		t.Fatalf("inventory: %d", r.status)
	}
	if r := admin("POST", "/_sim/reset", ""); r.status != 200 {
		t.Fatalf("reset: %d", r.status)
	}
	if f := e.sim.Faults(); f.RateLimit != 0 || e.sim.Stats().Jobs != 0 {
		t.Fatalf("after reset: %+v", f)
	}
	if r := admin("DELETE", "/_sim/faults", ""); r.status != 404 {
		t.Fatalf("unknown admin call: %d", r.status)
	}
}

func TestBucket(t *testing.T) {
	t.Parallel()
	var b bucket
	b.configure(0.5, 0)
	now := time.Unix(0, 0)
	if !b.allow(now) || b.allow(now) {
		t.Fatal("burst of ceil(0.5)=1")
	}
	if b.allow(now.Add(time.Second)) || !b.allow(now.Add(2*time.Second)) {
		t.Fatal("refill at 0.5/s")
	}
	b.configure(0, 0)
	for range 100 {
		if !b.allow(now) {
			t.Fatal("rate 0 must not throttle")
		}
	}
}
