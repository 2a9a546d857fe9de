package trigger_test

import (
	"strings"
	"testing"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/trigger"
)

func snap(id, inst, node string, n int) *results.Snapshot {
	s := &results.Snapshot{ID: id, Request: results.Request{ID: id, InstanceID: inst, NodeID: node, Origin: "trigger"}, Count: n}
	for i := 0; i < n; i++ {
		s.Clients = append(s.Clients, dcsapi.ClientInfo{ID: string(rune('a' + i)), Addr: "10.0.0.1:1"})
	}
	return s
}

func TestStatusAndResult(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	rq := func(id, node string, st tasks.State) tasks.Request {
		r := tasks.Request{ID: id, InstanceID: inst1, NodeID: node, State: st, Origin: "trigger"}
		switch st {
		case tasks.StateDone:
			r.SnapshotID = id
		case tasks.StateFailed:
			r.Error = "DCS.3053: node " + node + " does not exist"
		}
		return r
	}
	status := func(r tasks.Request, children ...tasks.Request) *tasks.Status {
		return &tasks.Status{Request: &r, Events: []tasks.Event{{State: tasks.StateQueued, Detail: "submitted"}}, Children: children}
	}
	all := func(id string) tasks.Request {
		r := rq(id, "", tasks.StateDispatched)
		r.AllNodes = true
		return r
	}
	f.rd.statuses = map[string]*tasks.Status{
		"running":     status(rq("running", "n1", tasks.StatePolling)),
		"failed":      status(rq("failed", "n1", tasks.StateFailed)),
		"done":        status(rq("done", "n1", tasks.StateDone)),
		"expired":     status(rq("expired", "n9", tasks.StateDone)),
		"all-done":    status(all("all-done"), rq("all-done_n1", "n1", tasks.StateDone), rq("all-done_n2", "n2", tasks.StateDone)),
		"all-running": status(all("all-running"), rq("all-running_n1", "n1", tasks.StateDone), rq("all-running_n2", "n2", tasks.StateFetching)),
		"all-failed":  status(all("all-failed"), rq("all-failed_n1", "n1", tasks.StateDone), rq("all-failed_n2", "n2", tasks.StateFailed)),
	}
	disc := all("all-nochildren")
	disc.State, disc.Error = tasks.StateFailed, "DCS.3022: instance does not exist"
	f.rd.statuses["all-nochildren"] = status(disc)
	for _, s := range []*results.Snapshot{snap("done", inst1, "n1", 3), snap("all-done_n1", inst1, "n1", 2), snap("all-done_n2", inst1, "n2", 1)} {
		f.rd.snaps[s.ID] = s
	}

	tests := []struct {
		name, path string
		code       int
		want       string // substring of the body
	}{
		{"unknown status", "/unknown", 404, `"error": "request unknown not found"`},
		{"invalid id", "/bad%20id", 400, `request id \"bad id\" has an invalid character`},
		{"running status", "/running", 200, `"state": "polling"`},
		{"running result", "/running/result", 409, `"error": "request is polling"`},
		{"failed status", "/failed", 200, `"state": "failed"`},
		{"failed result", "/failed/result", 422, `"error": "request failed: DCS.3053: node n1 does not exist"`},
		{"done result", "/done/result", 200, `"count": 3`},
		{"expired snapshot", "/expired/result", 404, "not found (expired?)"},
		{"unknown result", "/unknown/result", 404, "not found"},
		{"all-nodes status", "/all-done", 200, `"state": "done"`},
		{"all-nodes status children", "/all-done", 200, `"id": "all-done_n2"`},
		{"all-nodes result", "/all-done/result", 200, `"node_id": "n2"`},
		{"all-nodes running", "/all-running/result", 409, `"error": "request is dispatched"`},
		{"all-nodes failed", "/all-failed/result", 422, "request failed on 1 node(s); first: DCS.3053"},
		{"all-nodes discovery failed", "/all-nochildren/result", 422, "DCS.3022"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, req{method: "GET", path: trigger.PathQueries + tt.path})
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("code %d, want %d with %q; body %s", w.Code, tt.code, tt.want, w.Body)
			}
		})
	}
	t.Run("shapes", func(t *testing.T) {
		st := decode[trigger.StatusResponse](t, f.do(t, req{method: "GET", path: trigger.PathQueries + "/running"}))
		if st.State != tasks.StatePolling || st.Request.ID != "running" || len(st.Events) != 1 {
			t.Errorf("status %+v", st)
		}
		one := decode[results.Snapshot](t, f.do(t, req{method: "GET", path: trigger.PathQueries + "/done/result"}))
		if one.ID != "done" || len(one.Clients) != 3 {
			t.Errorf("snapshot %+v", one)
		}
		many := decode[[]results.Snapshot](t, f.do(t, req{method: "GET", path: trigger.PathQueries + "/all-done/result"}))
		if len(many) != 2 || many[0].Request.NodeID != "n1" || many[1].Count != 1 {
			t.Errorf("snapshots %+v", many)
		}
	})
}
