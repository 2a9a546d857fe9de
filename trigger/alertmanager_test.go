package trigger_test

import (
	"strings"
	"testing"

	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/trigger"
)

// q is an expected submission: node "" means all nodes.
type q struct{ inst, node string }

func checkSubmitted(t *testing.T, got []tasks.SubmitOptions, want []q) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("submitted %+v, want %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.InstanceID != w.inst || g.NodeID != w.node || g.AllNodes != (w.node == "") || g.Origin != tasks.OriginTrigger || !g.CleanCache {
			t.Errorf("submission %d: %+v, want %+v (trigger origin, clean cache)", i, g, w)
		}
	}
}

func TestAlertmanager(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		code    int
		want    []q
		skipped int
	}{
		{"firing_node.json", 202, []q{{inst1, node1}}, 0},
		{"firing_instance.json", 202, []q{{"44444444-4444-4444-8444-444444444444", ""}}, 0},
		{"resolved.json", 200, nil, 0},
		{"mixed.json", 202, []q{{"22222222-2222-4222-8222-222222222222", "22222222-0000-4000-8000-000000000001"},
			{"33333333-3333-4333-8333-333333333333", ""}}, 0},
		{"no_instance_label.json", 200, nil, 2},
		// The same node twice collapses; a node query of an instance that is
		// also queried whole is dropped.
		{"duplicates.json", 202, []q{{inst1, node1}, {"33333333-3333-4333-8333-333333333333", ""}}, 0},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".json"), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			w := f.do(t, req{path: trigger.PathAlertmanager, body: readFile(t, "testdata/alertmanager/"+tt.file),
				header: map[string]string{"Content-Type": "application/json"}})
			if w.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			checkSubmitted(t, f.subm.submitted(), tt.want)
			resp := decode[trigger.SubmitResponse](t, w)
			if len(resp.Requests) != len(tt.want) || len(resp.Skipped) != tt.skipped {
				t.Errorf("answer %+v, want %d requests and %d skipped", resp, len(tt.want), tt.skipped)
			}
			if resp.Requests == nil {
				t.Error(`"requests" is null, want []`)
			}
		})
	}
}

func TestAlertmanagerCustomLabels(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *trigger.Options) {
		o.AlertmanagerInstanceLabels = []string{"redis_instance"}
		o.AlertmanagerNodeLabels = []string{"redis_node"}
	})
	body := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"x",
		"instance_id":"ignored-now","redis_instance":"` + inst1 + `","redis_node":"` + node1 + `"}}]}`
	if w := f.do(t, req{path: trigger.PathAlertmanager, body: body}); w.Code != 202 {
		t.Fatalf("code %d: %s", w.Code, w.Body)
	}
	checkSubmitted(t, f.subm.submitted(), []q{{inst1, node1}})
}

func TestAlertmanagerBadBodies(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct{ name, body, want string }{
		{"not JSON", "alerts!", "not valid JSON"},
		{"empty", "", "body is empty"},
		{"wrong version", `{"version":"3","alerts":[]}`, `webhook version "3" is not supported`},
		{"no version", `{"alerts":[]}`, `webhook version "" is not supported`},
		{"alerts not a list", `{"version":"4","alerts":{}}`, `field "alerts" must be a JSON array`},
	}
	for _, tt := range tests {
		w := f.do(t, req{path: trigger.PathAlertmanager, body: tt.body})
		if w.Code != 400 || !strings.Contains(errorOf(t, w), tt.want) {
			t.Errorf("%s: code %d, error %q, want 400 %q", tt.name, w.Code, w.Body, tt.want)
		}
	}
}
