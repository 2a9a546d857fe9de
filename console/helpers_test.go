package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/console/internal/fakeclients"
	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// Ids of the unit tests' nodes (valid DCS ids).
const (
	instA = "11111111-aaaa-4aaa-8aaa-000000000001"
	nodeA = "node-a"
	nodeB = "node-b"
	instX = "22222222-bbbb-4bbb-8bbb-000000000002"
	nodeX = "node-x"
)

// t0 is the console's clock in the unit tests. It is the real time (to the
// minute) because the store trims history by the real clock.
var t0 = time.Now().UTC().Truncate(time.Minute)

// testRedis is the shared Redis at 127.0.0.1:6379 (CONSOLE_TEST_REDIS_ADDR to
// change it); each test works under its own key prefix and deletes its keys.
func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv("CONSOLE_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("these tests need Redis at %s (set CONSOLE_TEST_REDIS_ADDR): %v", addr, err)
	}
	return rdb
}

type fixture struct {
	t      testing.TB
	store  *results.Store
	reqs   *tasks.Requests
	h      http.Handler
	prefix string
}

// newFixture builds a store and request records under a unique prefix and a
// console on them; opt may change the options.
func newFixture(t testing.TB, opt func(*Options)) *fixture {
	t.Helper()
	rdb := testRedis(t)
	rnd := make([]byte, 6)
	_, _ = rand.Read(rnd)
	prefix := "test:console:" + hex.EncodeToString(rnd)
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	})
	f := &fixture{t: t, store: results.NewStore(rdb, results.StoreOptions{Prefix: prefix, Retention: 24 * time.Hour}),
		reqs: tasks.NewRequests(rdb, prefix, time.Hour)}
	o := Options{Store: f.store, Requests: f.reqs, Now: func() time.Time { return t0 }}
	if opt != nil {
		opt(&o)
	}
	h, err := NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	f.prefix = h.(*handler).prefix
	return f
}

// save stores a snapshot of clients for a node, fetched at `at`, with a diff
// against prev (nil: the first).
func (f *fixture) save(inst, node, id string, at time.Time, clients []dcsapi.ClientInfo, prev *results.Snapshot) *results.Snapshot {
	f.t.Helper()
	s := &results.Snapshot{
		ID:      id,
		Request: results.Request{ID: id, InstanceID: inst, NodeID: node, Origin: results.OriginSchedule, RequestedAt: at.Add(-3 * time.Second), Audit: "nightly"},
		Job: results.Job{ID: "job-" + id, Status: "SUCCESS", BeginTime: at.Add(-2 * time.Second), EndTime: at.Add(-time.Second),
			CompletionPath: results.CompletedByShowJob, Polls: 2},
		DCSTime: at.Add(-time.Second), DCSTimeRaw: fmt.Sprint(at.Add(-time.Second).UnixMilli()), FetchedAt: at,
		Count: len(clients), Clients: clients,
		Summary: results.Summarize(clients, results.SummaryOptions{}),
	}
	if prev != nil {
		d := results.Compare(prev.Clients, clients, 0)
		d.PreviousID, d.PreviousTime = prev.ID, prev.Time()
		s.Diff = &d
	}
	if err := f.store.Save(context.Background(), s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

type resp struct {
	code int
	hdr  http.Header
	body string
}

func (f *fixture) do(method, path string, body io.Reader, hdr map[string]string) resp {
	f.t.Helper()
	r := httptest.NewRequest(method, path, body)
	if body != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return resp{code: w.Code, hdr: w.Header(), body: w.Body.String()}
}

func (f *fixture) get(path string) resp {
	f.t.Helper()
	return f.do(http.MethodGet, path, nil, nil)
}

// mustGet GETs path and fails unless the answer is 200.
func (f *fixture) mustGet(path string) string {
	f.t.Helper()
	r := f.get(path)
	if r.code != http.StatusOK {
		f.t.Fatalf("GET %s: %d\n%s", path, r.code, r.body)
	}
	return r.body
}

// cl and genClients make sessions (shared with the browser test).
var (
	cl         = fakeclients.Client
	genClients = fakeclients.Gen
)

// cells returns the texts of the cells of column key in the session table.
func cells(body, key string) []string {
	re := regexp.MustCompile(`<td class="c-` + regexp.QuoteMeta(key) + `(?: n)?"[^>]*>([^<]*)</td>`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

var dataRe = regexp.MustCompile(`<td class="c-idle n" data-v="(-?\d+)"`)

func idles(body string) []string {
	var out []string
	for _, m := range dataRe.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func mustContain(t testing.TB, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
}

func mustNotContain(t testing.TB, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(body, s) {
			t.Errorf("page contains %q", s)
		}
	}
}
