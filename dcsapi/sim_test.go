package dcsapi_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/dcssim"
)

// The client against the simulator, over HTTP.

type simEnv struct {
	sim *dcssim.Server
	url string
	c   *dcsapi.Client
}

func startSim(t *testing.T, cfg dcssim.Config, auth dcsapi.Authenticator) *simEnv {
	t.Helper()
	if cfg.JobDuration == 0 {
		cfg.JobDuration = 40 * time.Millisecond
	}
	sim, err := dcssim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	if auth == nil {
		auth = &dcsapi.AKSK{AccessKey: dcssim.DefaultAK, SecretKey: dcssim.DefaultSK}
	}
	c, err := dcsapi.New(dcsapi.Config{Endpoint: srv.URL, ProjectID: dcssim.DefaultProjectID, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	return &simEnv{sim: sim, url: srv.URL, c: c}
}

// scanAndWait runs a scan to completion through ShowJobInfo.
func scanAndWait(t *testing.T, c *dcsapi.Client, inst, node string) *dcsapi.Job {
	t.Helper()
	ctx := context.Background()
	id, err := c.ScanClients(ctx, inst, node, true)
	if err != nil {
		t.Fatalf("ScanClients: %v", err)
	}
	for range 200 {
		j, err := c.ShowJobInfo(ctx, id)
		if err != nil {
			t.Fatalf("ShowJobInfo: %v", err)
		}
		if j.Status.Done() {
			return j
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("job %s did not finish", id)
	return nil
}

func TestSimEveryEndpoint(t *testing.T) {
	t.Parallel()
	e := startSim(t, dcssim.Config{}, nil)
	ctx := context.Background()

	il, err := e.c.ListInstances(ctx, dcsapi.ListInstancesOptions{Limit: 2})
	if err != nil || len(il.Instances) != 2 || il.Count < 7 {
		t.Fatalf("ListInstances page: %+v, %v", il, err)
	}
	all, err := e.c.ListAllInstances(ctx, dcsapi.ListInstancesOptions{})
	if err != nil || int64(len(all)) != il.Count {
		t.Fatalf("ListAllInstances: %d of %d, %v", len(all), il.Count, err)
	}
	in, err := e.c.ShowInstance(ctx, dcssim.ClusterInstanceID)
	if err != nil || in.CacheMode != "cluster" || in.MaxClients == 0 || in.Status != "RUNNING" {
		t.Fatalf("ShowInstance: %+v, %v", in, err)
	}
	nodes, err := e.c.ListLogicalNodes(ctx, dcssim.ClusterInstanceID)
	if err != nil || len(nodes) != 6 {
		t.Fatalf("ListLogicalNodes: %d nodes, %v", len(nodes), err)
	}
	targets, err := e.c.ScanTargets(ctx, dcssim.ProxyInstanceID)
	if err != nil || len(targets) != 2 || !targets[0].IsProxy() {
		t.Fatalf("ScanTargets(proxy): %+v, %v", targets, err)
	}
	if targets, _ := e.c.ScanTargets(ctx, dcssim.ClusterInstanceID); len(targets) != 6 {
		t.Fatalf("ScanTargets(cluster): %d nodes", len(targets))
	}

	// ListClients fails (500, transient) until a scan has succeeded.
	_, err = e.c.ListClients(ctx, dcssim.SingleInstanceID, dcssim.SingleNodeID, dcsapi.ListClientsOptions{})
	if ae := asAPI(t, err); ae.Status != 500 || !dcsapi.IsTransient(err) {
		t.Fatalf("ListClients before scan: %v", err)
	}
	job := scanAndWait(t, e.c, dcssim.SingleInstanceID, dcssim.SingleNodeID)
	if job.Status != dcsapi.JobSuccess || job.BeginTime.IsZero() || job.EndTime.Before(job.BeginTime) || job.FailReason != "" {
		t.Fatalf("job: %+v", job)
	}
	page, err := e.c.ListClients(ctx, dcssim.SingleInstanceID, dcssim.SingleNodeID,
		dcsapi.ListClientsOptions{Limit: 5, Sort: "idle", Order: dcsapi.OrderDesc})
	if err != nil || len(page.Clients) != 5 || page.Count != 250 || page.Time.Time.IsZero() {
		t.Fatalf("ListClients page: %+v, %v", page, err)
	}
	for i := 1; i < len(page.Clients); i++ {
		if page.Clients[i].Idle > page.Clients[i-1].Idle {
			t.Errorf("not sorted by idle desc: %d then %d", page.Clients[i-1].Idle, page.Clients[i].Idle)
		}
	}
	c0 := page.Clients[0]
	if c0.ID == "" || c0.Addr == "" || c0.Flags == "" || c0.Events == "" || c0.Peer == "" || c0.DB == "" {
		t.Errorf("client fields missing: %+v", c0)
	}
	// The addr filter without a port matches every session of the IP.
	ip, _, _ := strings.Cut(c0.Addr, ":")
	f, err := e.c.ListAllClients(ctx, dcssim.SingleInstanceID, dcssim.SingleNodeID, dcsapi.ListClientsOptions{Addr: ip})
	if err != nil || len(f.Clients) == 0 || int64(len(f.Clients)) != f.Count {
		t.Fatalf("addr filter: %+v, %v", f, err)
	}
	for _, c := range f.Clients {
		if !strings.HasPrefix(c.Addr, ip+":") {
			t.Errorf("addr filter %s let %s through", ip, c.Addr)
		}
	}
}

func TestSimPagingOver12000Sessions(t *testing.T) {
	t.Parallel()
	e := startSim(t, dcssim.Config{}, nil)
	scanAndWait(t, e.c, dcssim.HAInstanceID, dcssim.HAMasterNodeID)
	var calls int
	var mu sync.Mutex
	c, _ := dcsapi.New(dcsapi.Config{Endpoint: e.url, ProjectID: dcssim.DefaultProjectID,
		Auth:    &dcsapi.AKSK{AccessKey: dcssim.DefaultAK, SecretKey: dcssim.DefaultSK},
		Observe: func(ci dcsapi.CallInfo) { mu.Lock(); calls++; mu.Unlock() }})
	l, err := c.ListAllClients(context.Background(), dcssim.HAInstanceID, dcssim.HAMasterNodeID, dcsapi.ListClientsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Clients) != 12000 || l.Count != 12000 {
		t.Fatalf("got %d clients, count %d", len(l.Clients), l.Count)
	}
	seen := map[string]bool{}
	for _, cl := range l.Clients {
		if seen[cl.ID] {
			t.Fatalf("client %s twice", cl.ID)
		}
		seen[cl.ID] = true
	}
	if calls != 12 {
		t.Errorf("%d calls for 12,000 sessions at 1000 a page, want 12", calls)
	}
}

func TestSimErrorClasses(t *testing.T) {
	t.Parallel()
	e := startSim(t, dcssim.Config{}, nil)
	ctx := context.Background()
	tests := []struct {
		name  string
		call  func() error
		class dcsapi.Class
		code  string
	}{
		{"instance missing", func() error {
			_, err := e.c.ScanClients(ctx, "99999999-9999-4999-8999-999999999999", dcssim.SingleNodeID, false)
			return err
		}, dcsapi.ClassPermanent, "DCS.3022"},
		{"bad node", func() error {
			_, err := e.c.ScanClients(ctx, dcssim.SingleInstanceID, dcssim.HAMasterNodeID, false)
			return err
		}, dcsapi.ClassPermanent, "DCS.3053"},
		{"not supported", func() error {
			_, err := e.c.ScanClients(ctx, dcssim.Redis3InstanceID, dcssim.Redis3NodeID, false)
			return err
		}, dcsapi.ClassPermanent, "DCS.4848"},
		{"instance busy", func() error {
			_, err := e.c.ScanClients(ctx, dcssim.StoppedInstanceID, dcssim.StoppedNodeID, false)
			return err
		}, dcsapi.ClassTransient, "DCS.4049"},
		{"wrong kind of node", func() error {
			_, err := e.c.ScanClients(ctx, dcssim.ProxyInstanceID, dcssim.ProxyDataNode1ID, false)
			return err
		}, dcsapi.ClassPermanent, "DCS.4027"},
		{"unknown job", func() error {
			_, err := e.c.ShowJobInfo(ctx, "0123456789abcdef0123456789abcdef")
			if !dcsapi.IsJobNotFound(err) {
				t.Errorf("IsJobNotFound(%v) = false", err)
			}
			return err
		}, dcsapi.ClassPermanent, "DCS.5101"},
	}
	for _, tc := range tests {
		err := tc.call()
		if got := dcsapi.Classify(err); got != tc.class || dcsapi.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v classified %v, want %v %s", tc.name, err, got, tc.class, tc.code)
		}
		if ae := asAPI(t, err); ae.RequestID == "" {
			t.Errorf("%s: no request id", tc.name)
		}
	}

	// A second scan while one runs: DCS.4957, transient.
	slow := startSim(t, dcssim.Config{JobDuration: time.Hour}, nil)
	if _, err := slow.c.ScanClients(ctx, dcssim.SingleInstanceID, dcssim.SingleNodeID, false); err != nil {
		t.Fatal(err)
	}
	_, err := slow.c.ScanClients(ctx, dcssim.SingleInstanceID, dcssim.SingleNodeID, false)
	if dcsapi.ErrorCode(err) != "DCS.4957" || !dcsapi.IsTransient(err) {
		t.Fatalf("second scan: %v", err)
	}
}

func TestSimFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("throttled with Retry-After", func(t *testing.T) {
		t.Parallel()
		e := startSim(t, dcssim.Config{Faults: dcssim.Faults{RateLimit: 1, RateBurst: 1, RetryAfter: 3}}, nil)
		var err error
		for range 5 {
			if _, err = e.c.ListInstances(ctx, dcsapi.ListInstancesOptions{}); err != nil {
				break
			}
		}
		d, ok := dcsapi.RetryAfter(err)
		if !dcsapi.IsThrottled(err) || !ok || d != 3*time.Second || !strings.HasPrefix(dcsapi.ErrorCode(err), "APIG") {
			t.Fatalf("err %v, retry after %v", err, d)
		}
	})
	t.Run("5xx", func(t *testing.T) {
		t.Parallel()
		for _, status := range []int{500, 502, 503} {
			e := startSim(t, dcssim.Config{Faults: dcssim.Faults{FailNext: 1, FailNextStatus: status}}, nil)
			_, err := e.c.ListInstances(ctx, dcsapi.ListInstancesOptions{})
			if ae := asAPI(t, err); ae.Status != status || !dcsapi.IsTransient(err) {
				t.Errorf("status %d: %v", status, err)
			}
			if _, err := e.c.ListInstances(ctx, dcsapi.ListInstancesOptions{}); err != nil {
				t.Errorf("after the fault: %v", err)
			}
		}
	})
	t.Run("truncated and malformed bodies", func(t *testing.T) {
		t.Parallel()
		for _, f := range []dcssim.Faults{{TruncateShare: 1}, {MalformedShare: 1}} {
			e := startSim(t, dcssim.Config{Faults: f}, nil)
			_, err := e.c.ListInstances(ctx, dcsapi.ListInstancesOptions{})
			if err == nil || !dcsapi.IsTransient(err) {
				t.Errorf("%+v: %v, want a transient error", f, err)
			}
		}
	})
	t.Run("latency and timeout", func(t *testing.T) {
		t.Parallel()
		e := startSim(t, dcssim.Config{Faults: dcssim.Faults{Latency: dcssim.Duration(time.Second)}}, nil)
		c, _ := dcsapi.New(dcsapi.Config{Endpoint: e.url, ProjectID: dcssim.DefaultProjectID, Timeout: 100 * time.Millisecond,
			Auth: &dcsapi.AKSK{AccessKey: dcssim.DefaultAK, SecretKey: dcssim.DefaultSK}})
		_, err := c.ListInstances(ctx, dcsapi.ListInstancesOptions{})
		if !errors.Is(err, context.DeadlineExceeded) || !dcsapi.IsTransient(err) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("failed job and jobs endpoint not knowing the job", func(t *testing.T) {
		t.Parallel()
		e := startSim(t, dcssim.Config{Faults: dcssim.Faults{FailShare: 1, FailReason: "node unreachable"}}, nil)
		j := scanAndWait(t, e.c, dcssim.SingleInstanceID, dcssim.SingleNodeID)
		if j.Status != dcsapi.JobFail || j.FailReason != "node unreachable" {
			t.Errorf("job %+v", j)
		}
		u := startSim(t, dcssim.Config{Faults: dcssim.Faults{JobsUnknown: true}}, nil)
		id, err := u.c.ScanClients(ctx, dcssim.SingleInstanceID, dcssim.SingleNodeID, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.c.ShowJobInfo(ctx, id); !dcsapi.IsJobNotFound(err) {
			t.Errorf("ShowJobInfo with jobs_unknown: %v", err)
		}
	})
	t.Run("quirks: numbers as strings", func(t *testing.T) {
		t.Parallel()
		e := startSim(t, dcssim.Config{Quirks: true, TimeFormat: dcssim.TimeEpochMS}, nil)
		scanAndWait(t, e.c, dcssim.SingleInstanceID, dcssim.SingleNodeID)
		l, err := e.c.ListAllClients(ctx, dcssim.SingleInstanceID, dcssim.SingleNodeID, dcsapi.ListClientsOptions{})
		if err != nil || len(l.Clients) != 250 || l.Time.Time.IsZero() {
			t.Fatalf("quirks: %d clients, time %+v, %v", len(l.Clients), l.Time, err)
		}
		aged := 0
		for _, c := range l.Clients {
			if c.Age > 0 {
				aged++
			}
		}
		if aged == 0 {
			t.Error("no age decoded from string numbers")
		}
	})
}

func TestSimSignatureRejection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	for _, tc := range []struct {
		name string
		auth dcsapi.Authenticator
		want string
	}{
		{"wrong secret", &dcsapi.AKSK{AccessKey: dcssim.DefaultAK, SecretKey: "wrong"}, "verify aksk signature fail"},
		{"unknown key", &dcsapi.AKSK{AccessKey: "NOPE", SecretKey: "x"}, "not exist"},
		{"stale date", &dcsapi.AKSK{AccessKey: dcssim.DefaultAK, SecretKey: dcssim.DefaultSK,
			Now: func() time.Time { return now.Add(-16 * time.Minute) }}, "expired"},
		{"bad token", &dcsapi.Token{Token: "nope"}, "APIGW"},
	} {
		e := startSim(t, dcssim.Config{}, tc.auth)
		_, err := e.c.ShowInstance(ctx, dcssim.SingleInstanceID)
		if !dcsapi.IsAuth(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if strings.Contains(err.Error(), dcssim.DefaultSK) {
			t.Errorf("%s: error leaks the secret", tc.name)
		}
	}
	// Temporary credentials: the security token is sent and signed.
	e := startSim(t, dcssim.Config{AccessKeys: map[string]string{"TMPAK": "TMPSK"},
		SecurityTokens: map[string]string{"TMPAK": "sec-tok"}}, &dcsapi.AKSK{AccessKey: "TMPAK", SecretKey: "TMPSK", SecurityToken: "sec-tok"})
	if _, err := e.c.ShowInstance(ctx, dcssim.SingleInstanceID); err != nil {
		t.Errorf("temporary credentials: %v", err)
	}
	bad, _ := dcsapi.New(dcsapi.Config{Endpoint: e.url, ProjectID: dcssim.DefaultProjectID,
		Auth: &dcsapi.AKSK{AccessKey: "TMPAK", SecretKey: "TMPSK", SecurityToken: "other"}})
	if _, err := bad.ShowInstance(ctx, dcssim.SingleInstanceID); !dcsapi.IsAuth(err) {
		t.Errorf("wrong security token: %v", err)
	}
}

func TestSimTokenAuthAndRefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	user := dcssim.User{Domain: "acme", Name: "auditor", Password: "pw-123"}
	var e *simEnv
	iam := &dcsapi.IAMPassword{Domain: "acme", User: "auditor", Password: "pw-123", ProjectName: dcssim.DefaultProjectName}
	e = startSim(t, dcssim.Config{Users: []dcssim.User{user}, Tokens: []string{"static-tok"}}, iam)
	iam.IAMEndpoint = e.url
	if _, err := e.c.ShowInstance(ctx, dcssim.SingleInstanceID); err != nil {
		t.Fatalf("password flow: %v", err)
	}
	if _, err := e.c.ShowInstance(ctx, dcssim.SingleInstanceID); err != nil || iam.Fetches() != 1 {
		t.Fatalf("the cached token was not reused: %d fetches, %v", iam.Fetches(), err)
	}
	// A static token works until revoked, and is not refreshed.
	st, _ := dcsapi.New(dcsapi.Config{Endpoint: e.url, ProjectID: dcssim.DefaultProjectID, Auth: &dcsapi.Token{Token: "static-tok"}})
	if _, err := st.ShowInstance(ctx, dcssim.SingleInstanceID); err != nil {
		t.Errorf("static token: %v", err)
	}
	// The tokens are revoked: one 401, then a new token and success.
	e.sim.ExpireTokens()
	if _, err := e.c.ShowInstance(ctx, dcssim.SingleInstanceID); err != nil || iam.Fetches() != 2 {
		t.Fatalf("refresh after 401: %d fetches, %v", iam.Fetches(), err)
	}
	// A wrong password is an auth error naming IAM.
	badIAM := &dcsapi.IAMPassword{IAMEndpoint: e.url, Domain: "acme", User: "auditor", Password: "pw-WRONG-xyz", ProjectName: dcssim.DefaultProjectName}
	c, _ := dcsapi.New(dcsapi.Config{Endpoint: e.url, ProjectID: dcssim.DefaultProjectID, Auth: badIAM})
	if _, err := c.ShowInstance(ctx, dcssim.SingleInstanceID); !dcsapi.IsAuth(err) || !strings.Contains(err.Error(), "IAMToken") || strings.Contains(err.Error(), "pw-WRONG-xyz") {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := st.ShowInstance(ctx, dcssim.SingleInstanceID); !dcsapi.IsAuth(err) {
		t.Errorf("revoked static token: %v", err)
	}
}

func TestSimTokenRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	iam := &dcsapi.IAMPassword{Domain: "d", User: "u", Password: "p", ProjectName: dcssim.DefaultProjectName, Now: now}
	e := startSim(t, dcssim.Config{Users: []dcssim.User{{Domain: "d", Name: "u", Password: "p"}}, Now: now}, iam)
	iam.IAMEndpoint = e.url
	if _, err := e.c.ShowInstance(ctx, dcssim.SingleInstanceID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clock = clock.Add(23*time.Hour + 30*time.Minute) // inside the last hour of 24 h
	mu.Unlock()
	if _, err := e.c.ShowInstance(ctx, dcssim.SingleInstanceID); err != nil || iam.Fetches() != 2 {
		t.Fatalf("token not refreshed before expiry: %d fetches, %v", iam.Fetches(), err)
	}
}

func asAPI(t *testing.T, err error) *dcsapi.APIError {
	t.Helper()
	var ae *dcsapi.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	return ae
}
