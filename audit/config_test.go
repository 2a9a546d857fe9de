package audit

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestLoadExample checks the documented example file field by field.
func TestLoadExample(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/audits.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Audits: []Audit{
		{
			Name:       "orders-cache",
			Instance:   "5560df16-cebf-4473-95c4-d1b573c16e79",
			Nodes:      []string{"8f7ee181-88e2-49b7-a4bf-81f18f93a135", "0b4c1a2e-6f7d-4e3a-9c1b-2d5e8f7a6b4c"},
			Schedule:   "@every 15m",
			CleanCache: true,
			Retention:  720 * time.Hour,
			Rules: Rules{
				IdleSessions:           &IdleRule{LongerThan: 30 * time.Minute, Max: 0},
				MaxSessionsPerClientIP: 200,
				AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"),
					netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fd00::/8")},
				MaxShareOfMaxClients: 0.8,
				NewClients:           true,
			},
		},
		{
			Name:     "sessions-proxy",
			Instance: "3c9a7e21-5b8f-4d6c-a1e2-7f0b9d8c6e5a",
			AllNodes: true,
			Schedule: "TZ=UTC 30 3 * * *",
			Rules: Rules{
				IdleSessions:         &IdleRule{LongerThan: 2 * time.Hour, Max: 50},
				MaxShareOfMaxClients: 0.9,
				MaxClients:           10000,
			},
		},
		{
			Name:     "payments",
			Instance: "9d2f4b6a-1c3e-4a5b-8d7f-0e9c2b4a6d8f",
			Nodes:    []string{"4e6a8c0b-2d4f-4b6a-9c8e-1f3a5c7e9b0d"},
			Schedule: "@hourly",
		},
	}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load:\n got %+v\nwant %+v", c, want)
	}
	if !c.Audits[2].Rules.Empty() || c.Audits[0].Rules.Empty() {
		t.Error("Rules.Empty is wrong")
	}
	a, ok := c.Audit("sessions-proxy")
	if !ok || a != &c.Audits[1] {
		t.Errorf("Audit(sessions-proxy) = %v, %v", a, ok)
	}
	if _, ok := c.Audit("nope"); ok {
		t.Error("Audit(nope) found")
	}
	next := a.Next(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 1, 2, 3, 30, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("Next = %v, want %v", next, want)
	}
}

// TestDocExample keeps doc.go's example identical to testdata/audits.yml.
func TestDocExample(t *testing.T) {
	t.Parallel()
	file, err := os.ReadFile("testdata/audits.yml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(file), "\n") {
		if line == "" {
			continue
		}
		if line == "\n" {
			b.WriteString("//\n")
			continue
		}
		b.WriteString("//\t" + line)
	}
	if !strings.Contains(string(doc), b.String()) {
		t.Errorf("doc.go does not contain testdata/audits.yml verbatim (as an indented comment block):\n%s", b.String())
	}
}

// TestParseBad loads every testdata/bad file; each says what its error must
// contain in "# want:" lines.
func TestParseBad(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/bad/*.yml")
	if err != nil || len(files) < 40 {
		t.Fatalf("glob: %d files, %v", len(files), err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yml"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			if len(data) == 0 {
				wants = []string{"the file is empty"}
			}
			if len(wants) == 0 {
				t.Fatal("no # want: line")
			}
			c, err := Load(f)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			if c != nil {
				t.Errorf("Load returned a config with the error")
			}
			if !strings.HasPrefix(err.Error(), "audit config "+f+": ") {
				t.Errorf("error does not name the file: %v", err)
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n  %v\ndoes not contain\n  %s", err, w)
				}
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	const head = "audits:\n  - name: a\n    instance: i-1\n    nodes: [n-1]\n    schedule: \"@every 1m\"\n"
	tests := []struct {
		name  string
		yaml  string
		check func(*Config) bool
	}{
		{"no audits", "audits: []\n", func(c *Config) bool { return len(c.Audits) == 0 }},
		{"minimal", head, func(c *Config) bool {
			a := c.Audits[0]
			return a.Name == "a" && a.Rules.Empty() && !a.CleanCache && a.Retention == 0 && !a.AllNodes
		}},
		{"all nodes", "audits:\n  - {name: a, instance: i-1, all_nodes: true, schedule: \"*/15 * * * *\"}\n",
			func(c *Config) bool { return c.Audits[0].AllNodes && c.Audits[0].Nodes == nil }},
		{"all_nodes false with nodes", head + "    all_nodes: false\n",
			func(c *Config) bool { return !c.Audits[0].AllNodes && len(c.Audits[0].Nodes) == 1 }},
		{"null values are absent", head + "    retention:\n    rules:\n",
			func(c *Config) bool { return c.Audits[0].Retention == 0 && c.Audits[0].Rules.Empty() }},
		{"retention 0", head + "    retention: 0\n", func(c *Config) bool { return c.Audits[0].Retention == 0 }},
		{"descriptors", "audits:\n  - {name: a, instance: i, all_nodes: true, schedule: \"@daily\"}\n" +
			"  - {name: b, instance: i, all_nodes: true, schedule: \"@every 1h30m\"}\n" +
			"  - {name: c, instance: i, all_nodes: true, schedule: \"CRON_TZ=Asia/Shanghai 0 3 * * 1-5\"}\n",
			func(c *Config) bool { return len(c.Audits) == 3 }},
		{"share 1 and int", head + "    rules: {max_share_of_maxclients: 1}\n",
			func(c *Config) bool { return c.Audits[0].Rules.MaxShareOfMaxClients == 1 }},
		{"cidr forms", head + "    rules:\n      allowed_cidrs: [10.1.2.3/8, 192.168.1.1, \"::1\", \"::ffff:10.0.0.0/104\", \"2001:db8::/32\"]\n",
			func(c *Config) bool {
				return reflect.DeepEqual(c.Audits[0].Rules.AllowedCIDRs, []netip.Prefix{
					netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32"),
					netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.0.0.0/8"),
					netip.MustParsePrefix("2001:db8::/32")})
			}},
		{"idle default max", head + "    rules: {idle_sessions: {longer_than: 90s}}\n",
			func(c *Config) bool { return *c.Audits[0].Rules.IdleSessions == IdleRule{LongerThan: 90 * time.Second} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.yaml))
			if tt.check == nil {
				if err == nil {
					t.Fatal("Parse succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

// TestParseAliases: YAML anchors and aliases work for values.
func TestParseAliases(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`audits:
  - name: a
    instance: i-1
    nodes: [n-1]
    schedule: &s "@every 5m"
    rules: &r
      idle_sessions: {longer_than: 10m, max: 3}
  - name: b
    instance: i-2
    all_nodes: true
    schedule: *s
    rules: *r
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Audits[1].Schedule != "@every 5m" || c.Audits[1].Rules.IdleSessions.Max != 3 {
		t.Errorf("aliases not resolved: %+v", c.Audits[1])
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	listed := &Audit{Instance: "inst-1", Nodes: []string{"node-a", "node-b"}}
	all := &Audit{Instance: "inst-1", AllNodes: true}
	tests := []struct {
		a          *Audit
		inst, node string
		want       bool
	}{
		{listed, "inst-1", "node-a", true},
		{listed, "inst-1", "node-b", true},
		{listed, "INST-1", "NODE-B", true},
		{listed, "inst-1", "node-c", false},
		{listed, "inst-2", "node-a", false},
		{all, "inst-1", "anything", true},
		{all, "inst-2", "anything", false},
		{nil, "inst-1", "node-a", false},
	}
	for i, tt := range tests {
		if got := tt.a.Covers(tt.inst, tt.node); got != tt.want {
			t.Errorf("#%d Covers(%q, %q) = %v, want %v", i, tt.inst, tt.node, got, tt.want)
		}
	}
}

func TestLoadMissingAndLarge(t *testing.T) {
	t.Parallel()
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yml")); err == nil || !strings.Contains(err.Error(), "nope.yml") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("large file: %v", err)
	}
}

func TestEditDistanceSuggest(t *testing.T) {
	t.Parallel()
	if got := suggest("nodez", auditKeys); got != `did you mean "nodes"?` {
		t.Errorf("suggest = %s", got)
	}
	if got := suggest("xyz", idleKeys); got != "known fields: longer_than, max" {
		t.Errorf("suggest = %s", got)
	}
}
