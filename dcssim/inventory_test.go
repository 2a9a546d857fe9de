package dcssim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultInventory(t *testing.T) {
	t.Parallel()
	inv := DefaultInventory()
	modes := map[string]int{}
	for _, in := range inv.Instances {
		modes[in.CacheMode]++
	}
	for _, m := range []string{"single", "ha", "cluster", "proxy", "ha_rw_split"} {
		if modes[m] == 0 {
			t.Errorf("no %s instance", m)
		}
	}
	cl, _ := inv.Instance(ClusterInstanceID)
	if len(cl.Nodes) != 6 {
		t.Fatalf("cluster nodes %d", len(cl.Nodes))
	}
	groups := map[string]int{}
	for _, n := range cl.Nodes {
		groups[n.GroupID]++
	}
	if len(groups) != 3 {
		t.Fatalf("cluster shards %v", groups)
	}
	big, _ := inv.Instances[1].Node(HAMasterNodeID)
	if big.SessionCount() != BigNodeSessions {
		t.Fatal("big node")
	}
	r3, _ := inv.Instance(Redis3InstanceID)
	st, _ := inv.Instance(StoppedInstanceID)
	if clientMgtSupported(r3) || st.Status == "RUNNING" {
		t.Fatal("redis 3 / stopped instance")
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodYAML = `# a test inventory
instances:
  - id: aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
    name: yaml-ha
    cache_mode: ha
    engine_version: "6.0"
    nodes:
      - id: aaaaaaaa-0000-4000-8000-000000000001
        type: master
        sessions: 0
        job_duration: 500ms
      - id: aaaaaaaa-0000-4000-8000-000000000002
        type: slave
`

func TestLoadInventory(t *testing.T) {
	t.Parallel()
	inv, err := LoadInventory(writeFile(t, "inv.yaml", goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	in := inv.Instances[0]
	if in.Status != "RUNNING" || in.Port != 6379 || in.MaxClients != 10000 || len(in.Nodes) != 2 {
		t.Fatalf("defaults not filled: %+v", in)
	}
	if in.Nodes[0].SessionCount() != 0 || in.Nodes[1].SessionCount() != DefaultSessions ||
		time.Duration(in.Nodes[0].JobDuration) != 500*time.Millisecond {
		t.Fatalf("nodes: %+v", in.Nodes)
	}
	jsonInv := `{"instances":[{"id":"bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb","cache_mode":"proxy","nodes":[{"id":"bbbbbbbb-0000-4000-8000-000000000001","type":"proxy","sessions":3,"job_duration":"1s"}]}]}`
	inv, err = LoadInventory(writeFile(t, "inv.json", jsonInv))
	if err != nil || inv.Instances[0].Nodes[0].SessionCount() != 3 {
		t.Fatalf("json: %v", err)
	}

	// A node with zero sessions lists an empty array.
	inv, _ = ParseInventory([]byte(goodYAML), false)
	e := newEnv(t, Config{Inventory: inv})
	e.scan("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "aaaaaaaa-0000-4000-8000-000000000001")
	e.clock.Advance(time.Second)
	res, r := e.list("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "aaaaaaaa-0000-4000-8000-000000000001", "")
	if r.status != 200 || res.Count != 0 || !strings.Contains(string(r.raw), `"clients":[]`) {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestLoadInventoryErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, content string
		want                []string
	}{
		{"yaml unknown key", "a.yaml", strings.Replace(goodYAML, "        type: slave", "        type: slave\n        sesions: 5", 1),
			[]string{"line 14", "sesions"}},
		{"yaml unknown top key", "a.yml", "instance: []\n", []string{"line 1", "instance"}},
		{"json unknown key", "a.json", `{"instances":[{"id":"bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb","cache_mode":"single","colour":"red"}]}`,
			[]string{`unknown field "colour"`}},
		{"bad uuid", "a.yaml", strings.Replace(goodYAML, "aaaaaaaa-0000-4000-8000-000000000002", "node-2", 1),
			[]string{`instances[0].nodes[1].id "node-2" is not a UUID`}},
		{"duplicate node", "a.yaml", strings.Replace(goodYAML, "000000000002", "000000000001", 1),
			[]string{"duplicate"}},
		{"bad cache mode", "a.yaml", strings.Replace(goodYAML, "cache_mode: ha", "cache_mode: sentinel", 1),
			[]string{`instances[0].cache_mode "sentinel"`}},
		{"bad node type", "a.yaml", strings.Replace(goodYAML, "type: slave", "type: replica", 1),
			[]string{`nodes[1].type "replica"`}},
		{"bad sessions", "a.yaml", strings.Replace(goodYAML, "sessions: 0", "sessions: -1", 1),
			[]string{"sessions -1"}},
		{"bad duration", "a.yaml", strings.Replace(goodYAML, "500ms", "soon", 1), []string{"soon"}},
		{"empty", "a.yaml", "", []string{"empty"}},
		{"no instances", "a.yaml", "instances: []\n", []string{"at least one instance"}},
		{"json trailing", "a.json", `{"instances":[]} {}`, []string{"trailing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadInventory(writeFile(t, tt.file, tt.content))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := LoadInventory(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}
