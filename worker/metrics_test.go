package worker_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"

	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testenv"
	"github.com/dcsjobs/dcsjobs/tasks"
)

func scrape(t *testing.T, addr string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: HTTP %d: %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return string(body), fams
}

// families every worker scrape must show, once requests completed.
var wantFamilies = []string{
	"dcsjobs_dcs_requests_total", "dcsjobs_dcs_request_duration_seconds", "dcsjobs_dcs_throttled_total",
	"dcsjobs_api_budget_wait_seconds", "dcsjobs_scans_started_total", "dcsjobs_requests_completed_total",
	"dcsjobs_requests_failed_total", "dcsjobs_job_polls", "dcsjobs_job_wait_seconds", "dcsjobs_request_duration_seconds",
	"dcsjobs_tasks_total", "dcsjobs_task_duration_seconds", "dcsjobs_tasks_in_progress",
	"dcsjobs_node_sessions", "dcsjobs_node_sessions_idle", "dcsjobs_node_client_ips",
	"dcsjobs_node_oldest_connection_age_seconds", "dcsjobs_node_last_audit_timestamp_seconds",
	"dcsjobs_node_sessions_by_db", "dcsjobs_instance_max_clients", "dcsjobs_idle_threshold_seconds",
	"dcsjobs_store_up", "dcsjobs_build_info", "dcsjobs_redis_pool_hits_total", "dcsjobs_redis_pool_connections",
	"asynq_queue_tasks", "asynq_queue_paused", "asynq_queue_size", "asynq_queue_latency_seconds", "asynq_tasks_processed_total",
	"process_resident_memory_bytes", "go_goroutines",
}

func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsScrapeAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	e.Cfg.TopClientIPs = 3
	a, _ := e.StartWorker()
	b, _ := e.StartWorker()
	for _, o := range []tasks.SubmitOptions{testenv.Single(),
		{InstanceID: dcssim.HAInstanceID, NodeID: dcssim.HASlaveNodeID, Origin: tasks.OriginTrigger},
		{InstanceID: dcssim.Redis3InstanceID, NodeID: dcssim.Redis3NodeID}} {
		e.Wait(e.Submit(o).ID, time.Minute)
	}
	time.Sleep(11 * time.Second) // past the session gauges' cache
	text, fams := scrape(t, a.HTTPAddr())
	for _, f := range wantFamilies {
		if _, ok := fams[f]; !ok {
			t.Errorf("scrape lacks %s", f)
		}
	}
	node := map[string]string{"instance_id": dcssim.SingleInstanceID, "node_id": dcssim.SingleNodeID}
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
		max    float64
	}{
		{"dcsjobs_node_sessions", node, 250, 250},
		{"dcsjobs_node_client_ips", node, 2, 250},
		{"dcsjobs_node_last_audit_timestamp_seconds", node, float64(time.Now().Add(-time.Minute).Unix()), float64(time.Now().Unix())},
		{"dcsjobs_instance_max_clients", map[string]string{"instance_id": dcssim.SingleInstanceID}, 1, 1e6},
		{"dcsjobs_store_up", nil, 1, 1},
		{"asynq_queue_tasks", map[string]string{"queue": "dcs-default", "state": "archived"}, 1, 1},
	} {
		v, ok := value(fams, c.name, c.labels)
		if !ok || v < c.min || v > c.max {
			t.Errorf("%s%v = %v (found %v), want %v..%v", c.name, c.labels, v, ok, c.min, c.max)
		}
	}
	if n := len(fams["dcsjobs_node_sessions_by_client_ip"].GetMetric()); n == 0 || n > 3*2 {
		t.Errorf("%d client IP series for top 3 of 2 nodes", n)
	}
	// Counters live in each process; session gauges come from Redis, so both
	// replicas report the same values.
	_, other := scrape(t, b.HTTPAddr())
	// Counters are per process: together the replicas saw the one failure.
	fa, _ := value(fams, "dcsjobs_requests_failed_total", map[string]string{"reason": "permanent", "origin": "cli"})
	fb, _ := value(other, "dcsjobs_requests_failed_total", map[string]string{"reason": "permanent", "origin": "cli"})
	if fa+fb != 1 {
		t.Errorf("requests_failed_total{permanent,cli}: %v + %v across replicas, want 1", fa, fb)
	}
	for _, name := range []string{"dcsjobs_node_sessions", "dcsjobs_node_sessions_idle", "dcsjobs_node_client_ips",
		"dcsjobs_node_last_audit_timestamp_seconds", "dcsjobs_node_sessions_by_db"} {
		if fams[name].String() != other[name].String() {
			t.Errorf("%s differs between replicas:\n%v\n%v", name, fams[name], other[name])
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "client_ip=") && strings.Contains(line, "addr") {
			t.Errorf("a per-session label: %s", line)
		}
	}
	promtoolCheck(t, text)
}

// promtoolCheck runs `promtool check metrics` on a scrape (CI installs
// promtool from Debian's prometheus package).
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is missing on CI (.ci/run installs the prometheus package)")
		}
		t.Log("promtool not installed; skipping promtool check metrics")
		return
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestMetricsWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	w, _ := e.StartWorker()
	e.Wait(e.Submit(testenv.Single()).ID, time.Minute)
	e.Redis.Stop()
	time.Sleep(11 * time.Second) // past the cache
	_, fams := scrape(t, w.HTTPAddr())
	if v, ok := value(fams, "dcsjobs_store_up", nil); !ok || v != 0 {
		t.Errorf("store_up = %v %v with Redis down", v, ok)
	}
	if _, ok := fams["process_resident_memory_bytes"]; !ok {
		t.Error("process metrics missing while Redis is down")
	}
}

func TestMetricsBehindBasicAuth(t *testing.T) {
	t.Parallel()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	path := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(path, []byte("basic_auth_users:\n  prom: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := testenv.New(t, dcssim.Config{})
	e.Cfg.WebConfigFile = path
	w, _ := e.StartWorker()
	resp, err := http.Get("http://" + w.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without credentials: HTTP %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", "http://"+w.HTTPAddr()+"/metrics", nil)
	req.SetBasicAuth("prom", "s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with credentials: HTTP %d", resp.StatusCode)
	}
}
