package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/results"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestBadConfigStopsStartUpNamingTheField(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DCS_REGION": "ap-southeast-1", "HUAWEICLOUD_SDK_PROJECT_ID": "p1",
		"HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": "sk-secret-value", "JOB_DEADLINE": "forever"}
	var out, errb bytes.Buffer
	code := run(context.Background(), nil, func(k string) string { return env[k] }, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "$JOB_DEADLINE") || strings.Contains(errb.String(), "sk-secret-value") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &out, &errb); code != 0 ||
		!strings.Contains(errb.String(), "$HUAWEICLOUD_SDK_AK") {
		t.Fatalf("-h: exit %d", code)
	}
	// Redis that does not answer: start-up fails with the (redacted) URL.
	env["JOB_DEADLINE"] = "10m"
	env["REDIS_URL"] = "redis://:hunter2@127.0.0.1:1/0"
	errb.Reset()
	code = run(context.Background(), []string{"-log-format", "json"}, func(k string) string { return env[k] }, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "127.0.0.1:1") || strings.Contains(errb.String(), "hunter2") {
		t.Fatalf("redis down: exit %d, stderr %q", code, errb.String())
	}
}

// The demo runs the whole product with nothing but Go: requests flow through
// the embedded Redis and the simulator into stored snapshots.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-demo", "-http-addr", "127.0.0.1:0", "-demo-interval", "1h", "-log-format", "json"},
			func(string) string { return "" }, &out, &errb)
	}()
	re := regexp.MustCompile(`REDIS_URL=redis://(127\.0\.0\.1:\d+)/0`)
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("demo printed no REDIS_URL; stdout %q stderr %q", out.String(), errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	store := results.NewStore(rdb, results.StoreOptions{})
	for {
		nodes, _ := store.Nodes(context.Background())
		if len(nodes) >= 10 { // single + HA slave + 6 cluster + 2 proxies
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("demo stored snapshots of %d nodes; stderr:\n%s", len(nodes), errb.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("demo exited %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop")
	}
}
