package dcssim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi/signer"
)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 123e6, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	sim   *Server
	ts    *httptest.Server
	clock *clock
}

// newEnv starts a simulator on a fake clock; cfg.Now is overridden.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	c := newClock()
	cfg.Now = c.Now
	sim, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() { ts.Close(); sim.Close() })
	return &env{t: t, sim: sim, ts: ts, clock: c}
}

// reply is a decoded response.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r reply) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// do sends a request signed with DefaultAK/DefaultSK (x-sdk-date and host,
// via signer.Sign) unless mod replaces the credentials.
func (e *env) do(method, path string, body string, mod ...func(*http.Request)) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	}
	signer.Sign(req, []byte(body), DefaultAK, DefaultSK, e.clock.Now(), nil)
	for _, m := range mod {
		m(req)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) reply {
	e.t.Helper()
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	r := reply{status: res.StatusCode, header: res.Header, raw: raw}
	// Big pages are decoded by the caller into typed structs only: decoding
	// them twice doubles the cost under -race.
	if len(raw) > 0 && raw[0] == '{' && len(raw) < 64<<10 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&r.body); err != nil {
			e.t.Fatalf("%s %s: body %q: %v", req.Method, req.URL, raw, err)
		}
	}
	return r
}

func p(format string) string { return "/v2/" + DefaultProjectID + format }

func clientsPath(inst string) string { return p("/instances/" + inst + "/clients") }

// scan starts a scan and returns the job ID.
func (e *env) scan(inst, node string) string {
	e.t.Helper()
	r := e.do("POST", clientsPath(inst), `{"node_id":"`+node+`","clean_cache":true}`)
	if r.status != 200 {
		e.t.Fatalf("scan %s/%s: %d %s", inst, node, r.status, r.raw)
	}
	return r.str("job_id")
}

// scanDone scans and advances the clock past the job.
func (e *env) scanDone(inst, node string) string {
	e.t.Helper()
	id := e.scan(inst, node)
	e.clock.Advance(DefaultJobDuration + time.Millisecond)
	return id
}

type listResult struct {
	Time    string   `json:"time"`
	Clients []Client `json:"clients"`
	Count   int      `json:"count"`
}

func (e *env) list(inst, node, query string) (listResult, reply) {
	e.t.Helper()
	r := e.do("GET", clientsPath(inst)+"?node_id="+node+query, "")
	var out listResult
	if r.status == 200 {
		if err := json.Unmarshal(r.raw, &out); err != nil {
			e.t.Fatalf("list: %v: %s", err, r.raw)
		}
	}
	return out, r
}

// wantError checks an error answer's status, code and (if non-empty) message.
func wantError(t *testing.T, r reply, status int, code, msg string) {
	t.Helper()
	if r.status != status || r.str("error_code") != code {
		t.Fatalf("got %d %s, want %d %s", r.status, r.raw, status, code)
	}
	if msg != "" && !strings.Contains(r.str("error_msg"), msg) {
		t.Fatalf("error_msg %q does not contain %q", r.str("error_msg"), msg)
	}
	if strings.HasPrefix(code, "DCS.") {
		if v, ok := r.body["error_ext_msg"]; !ok || v != nil {
			t.Fatalf("error_ext_msg: want null, body %s", r.raw)
		}
	}
	if strings.HasPrefix(code, "APIGW.") && r.str("request_id") != r.header.Get("X-Request-Id") {
		t.Fatalf("request_id %q != X-Request-Id %q", r.str("request_id"), r.header.Get("X-Request-Id"))
	}
}

// signer0 signs a body-less request with the default AK/SK.
func signer0(e *env, req *http.Request) {
	signer.Sign(req, nil, DefaultAK, DefaultSK, e.clock.Now(), nil)
}
