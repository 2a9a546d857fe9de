package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testenv"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/worker"
)

func writeAudits(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// auditRequests lists the request ids an audit submitted, by node.
func auditRequests(t *testing.T, e *testenv.Env, name string) map[string][]string {
	t.Helper()
	keys, err := e.Redis.Client().Keys(context.Background(), e.Cfg.KeyPrefix+":{r:a_"+name+"_*}").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, k := range keys {
		id := strings.TrimSuffix(strings.TrimPrefix(k, e.Cfg.KeyPrefix+":{r:"), "}")
		parts := strings.SplitN(id, "_", 4)
		out[parts[3]] = append(out[parts[3]], id)
	}
	return out
}

func TestScheduledAuditsFireOncePerSlotAcrossTwoWorkers(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: 300 * time.Millisecond})
	path := filepath.Join(t.TempDir(), "audits.yml")
	writeAudits(t, path, fmt.Sprintf(`audits:
  - name: cluster-pair
    instance: %s
    nodes: [%s, %s]
    schedule: "@every 3s"
`, dcssim.ClusterInstanceID, dcssim.ClusterNode1ID, dcssim.ClusterNode2ID))
	e.Cfg.AuditConfig = path
	e.StartWorker()
	e.StartWorker()
	time.Sleep(13 * time.Second)
	reqs := auditRequests(t, e, "cluster-pair")
	for _, node := range []string{dcssim.ClusterNode1ID, dcssim.ClusterNode2ID} {
		ids := reqs[node]
		if len(ids) < 3 {
			t.Fatalf("node %s: %d slots audited in 13s at @every 3s", node, len(ids))
		}
		for _, id := range ids {
			e.Wait(id, time.Minute)
		}
		if scans := e.Scans(dcssim.ClusterInstanceID, node); scans != len(ids) {
			t.Errorf("node %s: %d scans for %d slots (two schedulers must not double a slot)", node, scans, len(ids))
		}
	}
}

func TestAuditOverlapSkipsBusyNodes(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: 7 * time.Second})
	path := filepath.Join(t.TempDir(), "audits.yml")
	writeAudits(t, path, fmt.Sprintf(`audits:
  - name: busy
    instance: %s
    nodes: [%s]
    schedule: "@every 1s"
`, dcssim.SingleInstanceID, dcssim.SingleNodeID))
	e.Cfg.AuditConfig = path
	w, _ := e.StartWorker()
	time.Sleep(6 * time.Second)
	if n := len(auditRequests(t, e, "busy")[dcssim.SingleNodeID]); n != 1 {
		t.Errorf("%d requests while the first scan ran; later slots must be skipped", n)
	}
	if got, _ := testutil.GatherAndCount(w.Registry(), "dcsjobs_audit_slots_skipped_total"); got != 1 {
		t.Fatalf("%d skip series", got)
	}
	fams, _ := w.Registry().Gather()
	for _, f := range fams {
		if f.GetName() == "dcsjobs_audit_slots_skipped_total" && f.GetMetric()[0].GetCounter().GetValue() < 2 {
			t.Errorf("skips counted: %v, want at least 2", f.GetMetric()[0].GetCounter().GetValue())
		}
	}
}

func TestAuditFindingsAndReload(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: 300 * time.Millisecond})
	path := filepath.Join(t.TempDir(), "audits.yml")
	// The simulator's clients come from 10.x, 172.16.x and 192.168.x: allowing
	// only 10.0.0.0/8 makes the others findings.
	writeAudits(t, path, fmt.Sprintf(`audits:
  - name: single
    instance: %s
    nodes: [%s]
    schedule: "@every 2s"
    retention: 720h
    rules:
      allowed_cidrs: [10.0.0.0/8]
      max_sessions_per_client_ip: 100000
`, dcssim.SingleInstanceID, dcssim.SingleNodeID))
	e.Cfg.AuditConfig = path
	w, _ := e.StartWorker()
	until(t, 30*time.Second, "a first audit snapshot", func() bool {
		_, err := w.Store().Latest(context.Background(), dcssim.SingleInstanceID, dcssim.SingleNodeID)
		return err == nil
	})
	snap, _ := w.Store().Latest(context.Background(), dcssim.SingleInstanceID, dcssim.SingleNodeID)
	if snap.Request.Audit != "single" || snap.Request.Origin != tasks.OriginSchedule {
		t.Errorf("snapshot request %+v", snap.Request)
	}
	rules := map[string]results.Finding{}
	for _, f := range snap.Findings {
		rules[f.Rule] = f
	}
	if f, ok := rules["client_outside_cidrs"]; !ok || f.Count == 0 || f.Audit != "single" {
		t.Errorf("findings %+v: want client_outside_cidrs", snap.Findings)
	}
	if _, ok := rules["sessions_per_client_ip"]; ok {
		t.Error("sessions_per_client_ip reported below its limit")
	}

	// A valid reload adds an audit; an invalid one keeps the config.
	writeAudits(t, path, fmt.Sprintf(`audits:
  - name: single
    instance: %s
    nodes: [%s]
    schedule: "@every 2s"
  - name: slave
    instance: %s
    nodes: [%s]
    schedule: "@every 2s"
`, dcssim.SingleInstanceID, dcssim.SingleNodeID, dcssim.HAInstanceID, dcssim.HASlaveNodeID))
	until(t, 30*time.Second, "the reloaded audit to run", func() bool {
		return len(auditRequests(t, e, "slave")[dcssim.HASlaveNodeID]) > 0
	})
	writeAudits(t, path, "audits:\n  - name: single\n    instanse: x\n")
	until(t, 10*time.Second, "the failed reload to show", func() bool {
		v, err := gaugeValue(w, "dcsjobs_audit_config_last_reload_successful")
		return err == nil && v == 0
	})
	if _, ok := w.Audits().Current().Audit("slave"); !ok {
		t.Error("an invalid reload replaced the config")
	}
}

func gaugeValue(w *worker.Worker, name string) (float64, error) {
	fams, err := w.Registry().Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			return f.GetMetric()[0].GetGauge().GetValue(), nil
		}
	}
	return 0, fmt.Errorf("no %s", name)
}

// The trigger API is mounted on the worker's HTTP server when a token is set,
// and absent otherwise.
func TestTriggerAPIOnTheWorker(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	const token = "trigger-token-0123456789"
	e.Cfg.TriggerToken = dcsapi.Secret(token)
	w, _ := e.StartWorker()
	body := fmt.Sprintf(`{"instance_id":%q,"node_id":%q}`, dcssim.SingleInstanceID, dcssim.SingleNodeID)
	req, _ := http.NewRequest("POST", "http://"+w.HTTPAddr()+"/api/v1/queries", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Requests []struct{ ID string } `json:"requests"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || len(out.Requests) != 1 {
		t.Fatalf("POST /api/v1/queries: %d %+v", resp.StatusCode, out)
	}
	st := e.Wait(out.Requests[0].ID, time.Minute)
	if st.State() != tasks.StateDone || st.Request.Origin != tasks.OriginTrigger {
		t.Errorf("triggered request %+v", st.Request)
	}
	// Without a token the API does not exist.
	e2 := testenv.New(t, dcssim.Config{})
	w2, _ := e2.StartWorker()
	resp, err = http.Post("http://"+w2.HTTPAddr()+"/api/v1/queries", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("trigger API without a token: HTTP %d, want 404", resp.StatusCode)
	}
}

// Ticks that piled up while no worker ran map to the current slot: one
// request per node, not one per tick.
func TestAuditTickBacklogDoesNotPileUp(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: 300 * time.Millisecond})
	path := filepath.Join(t.TempDir(), "audits.yml")
	writeAudits(t, path, fmt.Sprintf(`audits:
  - name: hourly
    instance: %s
    nodes: [%s]
    schedule: "@hourly"
`, dcssim.SingleInstanceID, dcssim.SingleNodeID))
	e.Cfg.AuditConfig = path
	c := asynq.NewClientFromRedisClient(e.Redis.Client())
	for range 5 {
		if _, err := c.Enqueue(tasks.NewAuditTask("hourly"), asynq.Queue("dcs-schedule")); err != nil {
			t.Fatal(err)
		}
	}
	e.StartWorker()
	until(t, 30*time.Second, "the backlog to drain", func() bool {
		qi, err := asynq.NewInspectorFromRedisClient(e.Redis.Client()).GetQueueInfo("dcs-schedule")
		return err == nil && qi.Pending == 0 && qi.Active == 0
	})
	ids := auditRequests(t, e, "hourly")[dcssim.SingleNodeID]
	if len(ids) != 1 {
		t.Fatalf("%d requests from 5 queued ticks of one slot, want 1", len(ids))
	}
	e.Wait(ids[0], time.Minute)
	if n := e.Scans(dcssim.SingleInstanceID, dcssim.SingleNodeID); n != 1 {
		t.Errorf("%d scans", n)
	}
}

// The console is served by the worker: the overview lists audited nodes, with
// the security headers.
func TestConsoleOnTheWorker(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, dcssim.Config{})
	w, _ := e.StartWorker()
	e.Wait(e.Submit(testenv.Single()).ID, time.Minute)
	resp, err := http.Get("http://" + w.HTTPAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), dcssim.SingleNodeID) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("console overview: HTTP %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if resp.Request.URL.Path != "/console/" {
		t.Errorf("/ redirected to %s", resp.Request.URL.Path)
	}
}
