package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testenv"
	"github.com/dcsjobs/dcsjobs/results"
)

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, redisURL string, tty bool, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"REDIS_URL": redisURL}
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb, tty)
	return result{code, out.String(), errb.String()}
}

var (
	inst = dcssim.SingleInstanceID
	node = dcssim.SingleNodeID
)

func TestInvalidInputIsRejectedBeforeAnythingIsEnqueued(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sessions", "-node", node}, "-instance is required"},
		{[]string{"sessions", "-instance", inst}, "give -node ID or -all-nodes"},
		{[]string{"sessions", "-instance", "../etc", "-node", node}, `instance id "../etc" is invalid`},
		{[]string{"sessions", "-instance", inst, "-node", "n/1"}, `node id "n/1" is invalid`},
		{[]string{"sessions", "-instance", inst, "-node", node, "-all-nodes"}, "not both"},
		{[]string{"sessions", "-instance", inst, "-node", node, "-o", "xml"}, `-o "xml"`},
		{[]string{"sessions", "-instance", inst, "-node", node, "-timeout", "-1s"}, "-timeout"},
		{[]string{"sessions", "-instance", inst, "-node", node, "-bogus"}, "bogus"},
		{[]string{"status"}, "exactly one request id"},
		{[]string{"status", "a b"}, "invalid character"},
		{[]string{"history", "-instance", inst}, "node id is empty"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		r := runCLI(t, e.Redis.URL(), false, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if keys, _ := e.Redis.Client().Keys(context.Background(), "*").Result(); len(keys) != 0 {
		t.Errorf("invalid input wrote to Redis: %v", keys)
	}
}

func TestSessionsWaitPrintsTheResult(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	e.StartWorker()

	// Without a terminal: nothing but the JSON snapshot on stdout.
	r := runCLI(t, e.Redis.URL(), false, "sessions", "-instance", inst, "-node", node, "-wait", "-o", "json")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var snap results.Snapshot
	if err := json.Unmarshal([]byte(r.stdout), &snap); err != nil || snap.Count != 250 || len(snap.Clients) != 250 {
		t.Fatalf("stdout is not the snapshot: %v (%.200s)", err, r.stdout)
	}
	for _, f := range []string{`"qbuf_free"`, `"addr"`, `"idle"`, `"fd"`} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("JSON lacks the DCS field %s", f)
		}
	}

	// On a terminal: progress on stderr, table on stdout.
	r = runCLI(t, e.Redis.URL(), true, "sessions", "-instance", inst, "-node", node, "-wait")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, step := range []string{"queued", "polling", "done"} {
		if !strings.Contains(r.stderr, step) {
			t.Errorf("progress lacks %q:\n%s", step, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "sessions 250") || !strings.Contains(r.stdout, "ADDR") {
		t.Errorf("table output:\n%.300s", r.stdout)
	}

	// Without -wait: the request id; then status, result (csv) and history.
	r = runCLI(t, e.Redis.URL(), false, "sessions", "-instance", inst, "-node", node)
	id := strings.TrimSpace(r.stdout)
	if r.code != exitOK || len(id) != 32 {
		t.Fatalf("sessions: exit %d, stdout %q", r.code, r.stdout)
	}
	e.Wait(id, time.Minute)
	r = runCLI(t, e.Redis.URL(), false, "status", id, "-o", "json")
	var st struct{ State string }
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &st) != nil || st.State != "done" {
		t.Errorf("status: exit %d %s", r.code, r.stdout)
	}
	r = runCLI(t, e.Redis.URL(), false, "result", id, "-o", "csv")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if r.code != exitOK || err != nil || len(rows) != 251 || len(rows[0]) != 22 || rows[0][14] != "qbuf_free" {
		t.Errorf("result csv: exit %d, %d rows, %v", r.code, len(rows), err)
	}
	r = runCLI(t, e.Redis.URL(), false, "history", "-instance", inst, "-node", node, "-o", "json")
	var h []results.Meta
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &h) != nil || len(h) != 3 {
		t.Errorf("history: exit %d, %d entries", r.code, len(h))
	}
}

func TestExitCodesForFailureAndTimeout(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: time.Hour})
	e.StartWorker()
	r := runCLI(t, e.Redis.URL(), false, "sessions", "-instance", dcssim.Redis3InstanceID, "-node", dcssim.Redis3NodeID, "-wait")
	if r.code != exitFailed || !strings.Contains(r.stderr, "DCS.4848") || r.stdout != "" {
		t.Errorf("failure: exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	r = runCLI(t, e.Redis.URL(), false, "sessions", "-instance", inst, "-node", node, "-wait", "-timeout", "2s")
	if r.code != exitTimeout || !strings.Contains(r.stderr, "timed out") || !strings.Contains(r.stderr, "enqueue status") {
		t.Errorf("timeout: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, e.Redis.URL(), false, "status", "0123456789abcdef0123456789abcdef")
	if r.code != exitFailed || !strings.Contains(r.stderr, "not found") {
		t.Errorf("unknown id: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "redis://127.0.0.1:1/0", false, "status", "0123456789abcdef0123456789abcdef")
	if r.code != exitError {
		t.Errorf("redis down: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestAllNodesWait(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	e.StartWorker()
	r := runCLI(t, e.Redis.URL(), false, "sessions", "-instance", dcssim.ProxyInstanceID, "-all-nodes", "-wait", "-o", "json")
	var snaps []results.Snapshot
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &snaps) != nil || len(snaps) != 2 {
		t.Fatalf("all nodes: exit %d, %d snapshots, stderr %q", r.code, len(snaps), r.stderr)
	}
}

// An all-nodes request whose nodes are not yet known (queued or discovering)
// is not finished: "result" must say so, not print nothing and exit 0.
func TestResultOfUnfinishedAllNodesRequest(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{}) // no worker: the request stays queued
	r := runCLI(t, e.Redis.URL(), false, "sessions", "-instance", dcssim.ProxyInstanceID, "-all-nodes")
	if r.code != exitOK {
		t.Fatalf("sessions: exit %d, stderr %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	for _, format := range []string{"table", "json"} {
		r = runCLI(t, e.Redis.URL(), false, "result", id, "-o", format)
		if r.code != exitFailed || !strings.Contains(r.stderr, "not finished") || r.stdout != "" {
			t.Errorf("result -o %s of a queued all-nodes request: exit %d, stdout %q, stderr %q", format, r.code, r.stdout, r.stderr)
		}
	}
}
