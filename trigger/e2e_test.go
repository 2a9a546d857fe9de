package trigger_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testenv"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/trigger"
)

// client talks to the trigger API over HTTP, as curl would.
type client struct {
	t    *testing.T
	base string
}

func (c client) call(method, path string, body []byte) (int, []byte) {
	c.t.Helper()
	r, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+testToken)
	r.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// submit POSTs body and returns the submitted requests.
func (c client) submit(path string, body []byte) []trigger.Submitted {
	c.t.Helper()
	code, b := c.call(http.MethodPost, path, body)
	if code != http.StatusAccepted {
		c.t.Fatalf("POST %s: %d %s", path, code, b)
	}
	var resp trigger.SubmitResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		c.t.Fatal(err)
	}
	return resp.Requests
}

// wait polls the status URL until the request ends, and returns its result.
func (c client) wait(s trigger.Submitted) []byte {
	c.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, b := c.call(http.MethodGet, s.StatusURL, nil)
		if code != http.StatusOK {
			c.t.Fatalf("GET %s: %d %s", s.StatusURL, code, b)
		}
		var st trigger.StatusResponse
		if err := json.Unmarshal(b, &st); err != nil {
			c.t.Fatal(err)
		}
		if st.State == tasks.StateDone {
			break
		}
		if st.State == tasks.StateFailed || time.Now().After(deadline) {
			c.t.Fatalf("request %s is %s: %s", s.ID, st.State, b)
		}
		if code, b := c.call(http.MethodGet, s.StatusURL+"/result", nil); code != http.StatusConflict {
			// Racing the worker: it may have finished since the status read.
			var again trigger.StatusResponse
			_, sb := c.call(http.MethodGet, s.StatusURL, nil)
			_ = json.Unmarshal(sb, &again)
			if !again.State.Terminal() {
				c.t.Fatalf("result of an unfinished request: %d %s", code, b)
			}
		}
		time.Sleep(500 * time.Millisecond) // two calls per round stay under the default 5/s limit
	}
	code, b := c.call(http.MethodGet, s.StatusURL+"/result", nil)
	if code != http.StatusOK {
		c.t.Fatalf("GET %s/result: %d %s", s.StatusURL, code, b)
	}
	return b
}

// TestEndToEnd runs the API against a real worker, Redis and the DCS
// simulator: a query and an Alertmanager alert each end in stored snapshots
// read back through the API.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and a worker")
	}
	t.Parallel()
	e := testenv.New(t, dcssim.Config{JobDuration: 300 * time.Millisecond})
	e.StartWorker()
	store := results.NewStore(e.Redis.Client(), results.StoreOptions{Prefix: e.Cfg.KeyPrefix})
	h, err := trigger.NewHandler(trigger.Options{Token: testToken, Submitter: e.Subm, Reader: trigger.Combine(e.Reqs, store)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := client{t: t, base: srv.URL}

	t.Run("query", func(t *testing.T) {
		c := client{t: t, base: c.base}
		reqs := c.submit(trigger.PathQueries, []byte(`{"instance_id":"`+dcssim.SingleInstanceID+`","node_id":"`+dcssim.SingleNodeID+`"}`))
		if len(reqs) != 1 {
			t.Fatalf("requests %+v", reqs)
		}
		var snap results.Snapshot
		if err := json.Unmarshal(c.wait(reqs[0]), &snap); err != nil {
			t.Fatal(err)
		}
		if snap.Count != 250 || len(snap.Clients) != 250 || snap.Request.Origin != tasks.OriginTrigger ||
			snap.Request.NodeID != dcssim.SingleNodeID || snap.Summary.Total != 250 {
			t.Errorf("snapshot: count %d, %d clients, origin %q, node %s, summary total %d",
				snap.Count, len(snap.Clients), snap.Request.Origin, snap.Request.NodeID, snap.Summary.Total)
		}
	})

	t.Run("alertmanager", func(t *testing.T) {
		c := client{t: t, base: c.base}
		// firing_instance.json alerts on the Proxy Cluster instance without a
		// node: every proxy is queried.
		reqs := c.submit(trigger.PathAlertmanager, []byte(readFile(t, "testdata/alertmanager/firing_instance.json")))
		if len(reqs) != 1 || !reqs[0].AllNodes || reqs[0].InstanceID != dcssim.ProxyInstanceID {
			t.Fatalf("requests %+v", reqs)
		}
		var snaps []results.Snapshot
		if err := json.Unmarshal(c.wait(reqs[0]), &snaps); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, s := range snaps {
			got[s.Request.NodeID] = len(s.Clients)
			if !s.Request.CleanCache || s.Request.Origin != tasks.OriginTrigger {
				t.Errorf("snapshot request %+v: want clean_cache and origin trigger", s.Request)
			}
		}
		if len(snaps) != 2 || got[dcssim.ProxyNode1ID] == 0 || got[dcssim.ProxyNode2ID] == 0 {
			t.Errorf("snapshots by node %v, want both proxies with sessions", got)
		}
	})
}
