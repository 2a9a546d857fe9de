package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

const (
	cfgOne = `audits:
  - name: one
    instance: inst-1
    nodes: [node-1]
    schedule: "@every 15m"
`
	cfgTwo = cfgOne + `  - name: two
    instance: inst-2
    all_nodes: true
    schedule: "@hourly"
    rules: {new_clients: true}
`
	cfgBad     = cfgOne + "    rules: {idle_session: {longer_than: 30m}}\n"
	cfgBadToo  = cfgOne + "    schedule_: \"@daily\"\n"
	cfgOneEdit = "# a comment changes nothing\n" + cfgOne
)

// syncBuffer is a log sink safe for the watcher's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), substr)
}

type fixture struct {
	w       *Watcher
	path    string
	reg     *prometheus.Registry
	log     *syncBuffer
	changes atomic.Int32
	last    atomic.Pointer[Config]
}

func newFixture(t *testing.T, content string, poll time.Duration) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(t.TempDir(), "audits.yml"), reg: prometheus.NewRegistry(), log: &syncBuffer{}}
	writeFile(t, f.path, content)
	w, err := NewWatcher(f.path, zerolog.New(f.log), f.reg)
	if err != nil {
		t.Fatal(err)
	}
	w.pollInterval = poll
	w.OnChange(func(c *Config) { f.changes.Add(1); f.last.Store(c) })
	f.w = w
	return f
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// metrics compares the four metrics, with the timestamp gauge checked apart.
func (f *fixture) metrics(t *testing.T, ok, audits, successes, failures int) {
	t.Helper()
	want := `
# HELP dcsjobs_audit_config_audits Audits in the configuration in use.
# TYPE dcsjobs_audit_config_audits gauge
dcsjobs_audit_config_audits ` + strconv.Itoa(audits) + `
# HELP dcsjobs_audit_config_last_reload_successful Whether the last audit configuration reload attempt was successful (1) or not (0).
# TYPE dcsjobs_audit_config_last_reload_successful gauge
dcsjobs_audit_config_last_reload_successful ` + strconv.Itoa(ok) + `
# HELP dcsjobs_audit_config_reloads_total Audit configuration reload attempts (SIGHUP, file change or Reload), by result.
# TYPE dcsjobs_audit_config_reloads_total counter
dcsjobs_audit_config_reloads_total{result="failure"} ` + strconv.Itoa(failures) + `
dcsjobs_audit_config_reloads_total{result="success"} ` + strconv.Itoa(successes) + `
`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "dcsjobs_audit_config_audits",
		"dcsjobs_audit_config_last_reload_successful", "dcsjobs_audit_config_reloads_total"); err != nil {
		t.Error(err)
	}
	ts := testutil.ToFloat64(f.w.lastOKAt)
	if now := float64(time.Now().Unix()); ts < now-60 || ts > now+1 {
		t.Errorf("last_reload_success_timestamp_seconds = %v, now %v", ts, now)
	}
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewWatcher(t *testing.T) {
	t.Parallel()
	f := newFixture(t, cfgOne, 0)
	if c := f.w.Current(); c == nil || len(c.Audits) != 1 || c.Audits[0].Name != "one" {
		t.Fatalf("Current = %+v", c)
	}
	f.metrics(t, 1, 1, 0, 0)
	lint, err := testutil.GatherAndLint(f.reg)
	if err != nil || len(lint) > 0 {
		t.Errorf("lint: %v %v", lint, err)
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, bad, cfgBad)
	tests := []struct{ name, path, want string }{
		{"invalid", bad, `line 6: unknown field "idle_session" in audit "one" rules`},
		{"missing", filepath.Join(dir, "nope.yml"), "nope.yml: no such file"},
	}
	for _, tt := range tests {
		reg := prometheus.NewRegistry()
		w, err := NewWatcher(tt.path, zerolog.Nop(), reg)
		if err == nil || w != nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewWatcher = %v, %v; want error containing %q", tt.name, w, err, tt.want)
		}
	}
	// Registering twice on one registry fails at start-up, not later.
	if _, err := NewWatcher(f.path, zerolog.Nop(), f.reg); err == nil {
		t.Error("second NewWatcher on the same registry succeeded")
	}
	// A nil registerer is allowed.
	if _, err := NewWatcher(f.path, zerolog.Nop(), nil); err != nil {
		t.Error(err)
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	f := newFixture(t, cfgOne, 0)
	first := f.w.Current()
	steps := []struct {
		name                string
		content             string
		wantErr             string
		wantAudits          int // in Current
		ok, succ, fail      int
		changes, failedLogs int
	}{
		{"unchanged file", cfgOne, "", 1, 1, 1, 0, 0, 0},
		{"comment only", cfgOneEdit, "", 1, 1, 2, 0, 0, 0},
		{"valid change", cfgTwo, "", 2, 1, 3, 0, 1, 0},
		{"invalid change keeps old", cfgBad, `unknown field "idle_session"`, 2, 0, 3, 1, 1, 1},
		{"same error again: not logged again", cfgBad, `unknown field "idle_session"`, 2, 0, 3, 2, 1, 1},
		{"another error: logged", cfgBadToo, `unknown field "schedule_"`, 2, 0, 3, 3, 1, 2},
		{"fixed, back to one audit", cfgOne, "", 1, 1, 4, 3, 2, 2},
		{"first error again after a success: logged", cfgBad, `unknown field "idle_session"`, 1, 0, 4, 4, 2, 3},
	}
	for _, s := range steps {
		writeFile(t, f.path, s.content)
		err := f.w.Reload()
		if s.wantErr == "" && err != nil || s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("%s: Reload = %v, want %q", s.name, err, s.wantErr)
		}
		if got := len(f.w.Current().Audits); got != s.wantAudits {
			t.Errorf("%s: %d audits in use, want %d", s.name, got, s.wantAudits)
		}
		f.metrics(t, s.ok, s.wantAudits, s.succ, s.fail)
		if got := int(f.changes.Load()); got != s.changes {
			t.Errorf("%s: OnChange called %d times, want %d", s.name, got, s.changes)
		}
		if got := f.log.count("reload failed"); got != s.failedLogs {
			t.Errorf("%s: %d failure log lines, want %d", s.name, got, s.failedLogs)
		}
	}
	if f.last.Load() != f.w.Current() {
		t.Error("OnChange was not given the config in use")
	}
	if f.w.Current() == first {
		t.Error("Current did not change")
	}
}

// TestReloadUnchangedKeepsPointer: a reload of the same content keeps the
// same *Config, so readers comparing pointers see no change.
func TestReloadUnchangedKeepsPointer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, cfgOne, 0)
	before := f.w.Current()
	if err := f.w.Reload(); err != nil {
		t.Fatal(err)
	}
	if f.w.Current() != before {
		t.Error("Current changed on an identical reload")
	}
}

// TestWatchFile covers the ways a file is replaced, with polling on.
func TestWatchFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		replace func(t *testing.T, path, content string)
	}{
		{"write in place", writeFile},
		{"rename over", func(t *testing.T, path, content string) {
			tmp := path + ".tmp"
			writeFile(t, tmp, content)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, cfgOne, 10*time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f.w.Start(ctx)
			f.w.Start(ctx) // a second Start does nothing

			tt.replace(t, f.path, cfgTwo)
			eventually(t, "the change to apply", func() bool { return len(f.w.Current().Audits) == 2 })
			tt.replace(t, f.path, cfgBad)
			eventually(t, "the failed reload", func() bool { return testutil.ToFloat64(f.w.lastOK) == 0 })
			time.Sleep(100 * time.Millisecond) // ten more polls: the bad file is not retried
			f.metrics(t, 0, 2, 1, 1)
			if n := f.changes.Load(); n != 1 {
				t.Errorf("OnChange called %d times, want 1", n)
			}
			tt.replace(t, f.path, cfgOneEdit)
			eventually(t, "the fix to apply", func() bool { return len(f.w.Current().Audits) == 1 })
			f.metrics(t, 1, 1, 2, 1)

			cancel()
			time.Sleep(50 * time.Millisecond)
			tt.replace(t, f.path, cfgTwo)
			time.Sleep(100 * time.Millisecond)
			if len(f.w.Current().Audits) != 1 {
				t.Error("a change was applied after ctx ended")
			}
		})
	}
}

// TestWatchConfigMapSwap reproduces a Kubernetes ConfigMap volume: the file
// is a symlink through "..data", itself a symlink to a timestamped directory
// that an update replaces by renaming a new "..data" over the old one.
func TestWatchConfigMapSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "audits.yml"), content)
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_01_01_00_00_00.1", cfgOne)
	path := filepath.Join(dir, "audits.yml")
	if err := os.Symlink("..data/audits.yml", path); err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher(path, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w.pollInterval = 10 * time.Millisecond
	var changes atomic.Int32
	w.OnChange(func(*Config) { changes.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)

	version("..2026_01_01_00_05_00.2", cfgTwo)
	eventually(t, "the swapped config", func() bool { return len(w.Current().Audits) == 2 })
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01_01_00_00_00.1")); err != nil {
		t.Fatal(err)
	}
	version("..2026_01_01_00_10_00.3", cfgOne)
	eventually(t, "the second swap", func() bool { return len(w.Current().Audits) == 1 })
	if n := changes.Load(); n != 2 {
		t.Errorf("OnChange called %d times, want 2", n)
	}
}

// TestSIGHUP sends SIGHUP to the test process itself. Not parallel: every
// started Watcher in the process would reload. Start installs the handler
// before it returns, so the signal cannot kill the test.
func TestSIGHUP(t *testing.T) {
	f := newFixture(t, cfgOne, 0) // polling off: only the signal can reload
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.w.Start(ctx)

	writeFile(t, f.path, cfgTwo)
	time.Sleep(30 * time.Millisecond)
	if len(f.w.Current().Audits) != 1 {
		t.Fatal("reloaded without a signal")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SIGHUP to reload", func() bool { return len(f.w.Current().Audits) == 2 })
	f.metrics(t, 1, 2, 1, 0)
	if f.changes.Load() != 1 || f.log.count("SIGHUP: reloading") != 1 {
		t.Errorf("changes %d, SIGHUP log lines %d", f.changes.Load(), f.log.count("SIGHUP: reloading"))
	}

	writeFile(t, f.path, cfgBad)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failed SIGHUP reload", func() bool { return testutil.ToFloat64(f.w.lastOK) == 0 })
	f.metrics(t, 0, 2, 1, 1)
	if len(f.w.Current().Audits) != 2 {
		t.Error("the failed reload replaced the config")
	}
}

// TestPollWaitsForStableContent: a new content is applied at the second poll
// that sees it, so a file caught mid-write is not a failed reload.
func TestPollWaitsForStableContent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, cfgOne, 0)
	var pending [32]byte
	pending = f.w.poll(pending)
	half := cfgTwo[:len(cfgTwo)-20]
	writeFile(t, f.path, half)
	pending = f.w.poll(pending)
	writeFile(t, f.path, cfgTwo)
	pending = f.w.poll(pending)
	if len(f.w.Current().Audits) != 1 {
		t.Fatal("applied at the first sighting")
	}
	f.w.poll(pending)
	if len(f.w.Current().Audits) != 2 {
		t.Fatal("not applied at the second sighting")
	}
	f.metrics(t, 1, 2, 1, 0) // the half-written file was never tried
}
