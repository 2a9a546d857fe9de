package trigger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/time/rate"

	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/trigger"
)

const testToken = "t0k3n-for-tests-0123456789"

// fakeSubmitter records submissions and answers with sequential ids.
type fakeSubmitter struct {
	mu  sync.Mutex
	got []tasks.SubmitOptions
	err error
}

func (f *fakeSubmitter) Submit(_ context.Context, o tasks.SubmitOptions) (*tasks.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if f.err != nil {
		return nil, f.err
	}
	for _, g := range f.got {
		if o.ID != "" && g.ID == o.ID {
			return nil, fmt.Errorf("%w: %s", tasks.ErrDuplicateRequest, o.ID)
		}
	}
	f.got = append(f.got, o)
	id := o.ID
	if id == "" {
		id = fmt.Sprintf("req%d", len(f.got))
	}
	return &tasks.Request{ID: id, InstanceID: o.InstanceID, NodeID: o.NodeID,
		AllNodes: o.AllNodes, CleanCache: o.CleanCache, Origin: o.Origin, State: tasks.StateQueued}, nil
}

func (f *fakeSubmitter) submitted() []tasks.SubmitOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]tasks.SubmitOptions(nil), f.got...)
}

// fakeReader serves statuses and snapshots from maps.
type fakeReader struct {
	statuses map[string]*tasks.Status
	snaps    map[string]*results.Snapshot // by snapshot id
}

func (f *fakeReader) Status(_ context.Context, id string) (*tasks.Status, error) {
	if st, ok := f.statuses[id]; ok {
		return st, nil
	}
	return nil, fmt.Errorf("%w: %s", tasks.ErrRequestNotFound, id)
}

func (f *fakeReader) Get(_ context.Context, inst, node, snap string) (*results.Snapshot, error) {
	if s, ok := f.snaps[snap]; ok && s.Request.InstanceID == inst && s.Request.NodeID == node {
		return s, nil
	}
	return nil, fmt.Errorf("snapshot %s: %w", snap, results.ErrNotFound)
}

type fixture struct {
	h    http.Handler
	subm *fakeSubmitter
	rd   *fakeReader
}

// newFixture builds a handler with fakes, no rate limit, and lets mod change
// the options.
func newFixture(t *testing.T, mod func(*trigger.Options)) *fixture {
	t.Helper()
	f := &fixture{subm: &fakeSubmitter{}, rd: &fakeReader{statuses: map[string]*tasks.Status{}, snaps: map[string]*results.Snapshot{}}}
	o := trigger.Options{Token: testToken, Submitter: f.subm, Reader: f.rd, Rate: rate.Inf}
	if mod != nil {
		mod(&o)
	}
	h, err := trigger.NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

// req describes one request to the handler.
type req struct {
	method, path, body string
	auth               string // Authorization header; "-" for none; "" for the right token
	remote             string
	header             map[string]string
}

func (f *fixture) do(t *testing.T, r req) *httptest.ResponseRecorder {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	switch r.auth {
	case "":
		hr.Header.Set("Authorization", "Bearer "+testToken)
	case "-":
	default:
		hr.Header.Set("Authorization", r.auth)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, hr)
	return w
}

func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", w.Body.String(), err)
	}
	return e.Error
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return v
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
