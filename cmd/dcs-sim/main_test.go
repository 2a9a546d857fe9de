package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcssim"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHelpListsEveryFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, f := range []string{"listen", "ak", "sk", "security-token", "token", "user", "token-ttl", "project-id",
		"project-name", "inventory", "seed", "job-duration", "fail-share", "time-format", "quirks", "no-auth", "quiet",
		"fault-ops", "rate-limit", "rate-burst", "retry-after", "error-share", "fail-next", "fail-next-status",
		"latency", "truncate-share", "malformed-share", "slow-job-duration", "fail-reason", "jobs-unknown"} {
		if !strings.Contains(stderr.String(), "\n  -"+f+" ") && !strings.Contains(stderr.String(), "\n  -"+f+"\n") {
			t.Errorf("-h does not document -%s", f)
		}
	}
}

func TestBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"-bogus"}, nil, "bogus"},
		{"positional", []string{"serve"}, nil, "unexpected arguments"},
		{"bad time format", []string{"-time-format", "unix"}, nil, "TimeFormat"},
		{"bad share", []string{"-error-share", "2"}, nil, "error_share"},
		{"bad op", []string{"-fault-ops", "ScanClients,Nope"}, nil, "Nope"},
		{"bad user", []string{"-user", "nodomain"}, nil, "domain/name:password"},
		{"missing inventory", []string{"-inventory", "/nonexistent/inv.yaml"}, nil, "inventory"},
		{"bad env", nil, map[string]string{"DCSSIM_RATE_LIMIT": "fast"}, "DCSSIM_RATE_LIMIT"},
		{"bad listen", []string{"-listen", "256.0.0.1:99999"}, nil, "dcs-sim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q, want mention of %q", code, stderr.String(), tt.want)
			}
		})
	}
}

func TestServeAndShutdown(t *testing.T) {
	t.Setenv("DCSSIM_RATE_LIMIT", "1000") // env fallback reaches the faults
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-token", "demo-token", "-quiet=false",
			"-job-duration", "10ms", "-quirks"}, pw, &stderr)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var base string
	var banner strings.Builder
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for sc.Scan() {
		line := sc.Text()
		banner.WriteString(line + "\n")
		if m := re.FindStringSubmatch(line); m != nil {
			base = m[1]
		}
		if strings.HasPrefix(line, "  e.g.") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if base == "" {
		t.Fatalf("no address in banner:\n%s", banner.String())
	}
	for _, want := range []string{dcssim.DefaultProjectID, dcssim.DefaultAK, dcssim.DefaultSK, dcssim.HAMasterNodeID, "demo-token"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %s", want)
		}
	}

	call := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("X-Auth-Token", "demo-token")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	pp := "/v2/" + dcssim.DefaultProjectID + "/instances/" + dcssim.SingleInstanceID + "/clients"
	if code, b := call("POST", pp, `{"node_id":"`+dcssim.SingleNodeID+`"}`); code != 200 {
		t.Fatalf("scan: %d %s", code, b)
	}
	time.Sleep(30 * time.Millisecond)
	code, b := call("GET", pp+"?node_id="+dcssim.SingleNodeID, "")
	if code != 200 || !strings.Contains(string(b), `"idle":"`) {
		t.Fatalf("list (quirks): %d %s", code, b)
	}
	_, b = call("GET", "/_sim/faults", "")
	var f dcssim.Faults
	if err := json.Unmarshal(b, &f); err != nil || f.RateLimit != 1000 {
		t.Fatalf("faults from env: %v %s", err, b)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown")
	}
	if !strings.Contains(stderr.String(), "op=ScanClients") || strings.Contains(stderr.String(), "demo-token") {
		t.Errorf("request log: %s", stderr.String())
	}
}
