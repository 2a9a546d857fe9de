package dcsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testProject  = "0123456789abcdef0123456789abcdef"
	testInstance = "5560df16-cebf-4473-95c4-d1b573c16e79"
	testNode     = "8f7ee181-88e2-49b7-a4bf-81f18f93a135"
)

func newTestClient(t *testing.T, h http.HandlerFunc, mod func(*Config)) (*Client, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	cfg := Config{Endpoint: srv.URL, ProjectID: testProject,
		Auth: &AKSK{AccessKey: "AK", SecretKey: "SK-very-secret"}}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, &conns
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	var got *http.Request
	var body []byte
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		got, body = r, must(io.ReadAll(r.Body))
		_, _ = io.WriteString(w, `{"job_id":"8abf6e1e824e204401824e3e621b0042"}`)
	}, nil)
	id, err := c.ScanClients(context.Background(), testInstance, testNode, true)
	if err != nil || id != "8abf6e1e824e204401824e3e621b0042" {
		t.Fatalf("ScanClients = %q, %v", id, err)
	}
	if got.Method != "POST" || got.URL.Path != "/v2/"+testProject+"/instances/"+testInstance+"/clients" {
		t.Errorf("request %s %s", got.Method, got.URL.Path)
	}
	if string(body) != `{"node_id":"`+testNode+`","clean_cache":true}` {
		t.Errorf("body %s", body)
	}
	for h, want := range map[string]string{
		"Content-Type": "application/json;charset=UTF-8", "X-Project-Id": testProject, "User-Agent": DefaultUserAgent,
	} {
		if v := got.Header.Get(h); v != want {
			t.Errorf("%s = %q, want %q", h, v, want)
		}
	}
	auth := got.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-project-id;x-sdk-date, Signature=") {
		t.Errorf("Authorization %q", auth)
	}
	if strings.Contains(auth, "SK-very-secret") {
		t.Error("secret key in a header")
	}
}

func TestInvalidIDsNeverReachTheServer(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }, nil)
	ctx := context.Background()
	checks := []error{
		second(c.ScanClients(ctx, "../../admin", testNode, false)),
		second(c.ScanClients(ctx, testInstance, "n?x=1", false)),
		second(c.ListClients(ctx, testInstance, "a/b", ListClientsOptions{})),
		second(c.ListClients(ctx, testInstance, testNode, ListClientsOptions{Limit: 1001})),
		second(c.ListClients(ctx, testInstance, testNode, ListClientsOptions{Order: "up"})),
		second(c.ListClients(ctx, testInstance, testNode, ListClientsOptions{Sort: "idle;drop"})),
		second(c.ShowJobInfo(ctx, "j%2F..")),
		second(c.ShowInstance(ctx, "")),
		second(c.ListLogicalNodes(ctx, "x y")),
	}
	for i, err := range checks {
		if err == nil || !IsPermanent(err) {
			t.Errorf("check %d: err = %v, want a permanent validation error", i, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}

func TestBodyCapAndDecodeErrors(t *testing.T) {
	t.Parallel()
	big := `{"time":"x","count":1,"clients":[{"name":"` + strings.Repeat("a", 4096) + `"}]}`
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("node_id") {
		case "big":
			_, _ = io.WriteString(w, big)
		case "truncated":
			_, _ = io.WriteString(w, `{"time":"x","count":1,"clients":[{"id":"1","ad`)
		case "html":
			_, _ = io.WriteString(w, `<html>maintenance</html>`)
		}
	}, func(c *Config) { c.MaxResponseBytes = 1024 })
	_, err := c.ListClients(context.Background(), testInstance, "big", ListClientsOptions{})
	var tl *BodyTooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "1024-byte limit") {
		t.Errorf("big body: %v", err)
	}
	for _, node := range []string{"truncated", "html"} {
		_, err := c.ListClients(context.Background(), testInstance, node, ListClientsOptions{})
		var de *DecodeError
		if !errors.As(err, &de) || !IsTransient(err) {
			t.Errorf("%s: %v, want a transient DecodeError", node, err)
		}
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	_, err := c.ShowJobInfo(context.Background(), "j1")
	if !errors.Is(err, context.DeadlineExceeded) || !IsTransient(err) {
		t.Errorf("timeout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.ShowJobInfo(ctx, "j1"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
}

func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	c, conns := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"job_id":"j","status":"RUNNING","begin_time":"1","end_time":""}`)
	}, func(c *Config) { c.HTTPClient = &http.Client{Transport: newTransport()} })
	for range 20 {
		if _, err := c.ShowJobInfo(context.Background(), "j"); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 sequential calls opened %d connections, want 1", n)
	}
}

func TestObserveAndErrorBody(t *testing.T) {
	t.Parallel()
	var seen []CallInfo
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "rid-1")
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(429)
		_, _ = io.WriteString(w, `{"error_code":"APIGW.0308","error_msg":"throttled","request_id":"x"}`)
	}, func(c *Config) { c.Observe = func(ci CallInfo) { seen = append(seen, ci) } })
	_, err := c.ListInstances(context.Background(), ListInstancesOptions{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.RequestID != "rid-1" || ae.RetryAfter != 2*time.Second || !IsThrottled(err) {
		t.Fatalf("err = %#v", err)
	}
	if len(seen) != 1 || seen[0].Op != OpListInstances || seen[0].Status != 429 || seen[0].Class != ClassThrottled || seen[0].Code != "APIGW.0308" {
		t.Errorf("observed %+v", seen)
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	auth := &Token{Token: "t"}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{ProjectID: testProject, Auth: auth}, "Endpoint or Region"},
		{Config{Region: "AP South", ProjectID: testProject, Auth: auth}, `Region: region "AP South" is invalid`},
		{Config{Endpoint: "ftp://x", ProjectID: testProject, Auth: auth}, "scheme must be http or https"},
		{Config{Endpoint: "https://u:p@x", ProjectID: testProject, Auth: auth}, "without user"},
		{Config{Endpoint: "https://x", Auth: auth}, "ProjectID is empty"},
		{Config{Endpoint: "https://x", ProjectID: "p/1", Auth: auth}, `ProjectID "p/1" is invalid`},
		{Config{Endpoint: "https://x", ProjectID: testProject}, "Auth is required"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	c, err := New(Config{Region: "ap-southeast-1", ProjectID: testProject, Auth: auth})
	if err != nil || c.Endpoint() != "https://dcs.ap-southeast-1.myhuaweicloud.com" {
		t.Errorf("region endpoint: %v %v", c, err)
	}
	c, err = New(Config{Endpoint: "http://127.0.0.1:1/prefix/", ProjectID: testProject, Auth: auth})
	if err != nil || c.Endpoint() != "http://127.0.0.1:1/prefix" {
		t.Errorf("explicit endpoint: %v", err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	const sk, tok, pw = "SK-0123456789", "TOKEN-abcdef", "PW-zyxw"
	creds := []any{
		&AKSK{AccessKey: "AK1", SecretKey: sk, SecurityToken: tok},
		AKSK{AccessKey: "AK1", SecretKey: sk, SecurityToken: tok},
		&Token{Token: tok},
		&IAMPassword{Domain: "d", User: "u", Password: pw},
		Config{Endpoint: "https://x", ProjectID: testProject, Auth: &AKSK{AccessKey: "AK1", SecretKey: sk}},
		Secret(sk),
	}
	for _, v := range creds {
		var out []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%T"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
		if b, err := json.Marshal(v); err == nil {
			out = append(out, string(b))
		}
		all := strings.Join(out, "\n")
		for _, s := range []string{sk, tok, pw, "534b2d", "544f4b"} { // hex of "SK-" and "TOK"
			if strings.Contains(all, s) {
				t.Errorf("%T printed a secret: %s", v, all)
			}
		}
	}
	if Secret(sk).Reveal() != sk || Secret("").String() != "" {
		t.Error("Reveal or empty String wrong")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func second[T any](_ T, err error) error { return err }
