package audit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// DefaultPollInterval is how often a started Watcher reads the file to see
// whether it changed.
const DefaultPollInterval = time.Second

// Watcher holds the current audit configuration and reloads it on SIGHUP and
// when the file changes. Readers call Current, which never blocks.
type Watcher struct {
	path string
	log  zerolog.Logger
	cur  atomic.Pointer[Config]

	// pollInterval is DefaultPollInterval; tests shorten it, or set it to 0 to
	// turn polling off.
	pollInterval time.Duration
	started      atomic.Bool

	mu        sync.Mutex // serialises reloads; guards the fields below
	seen      [sha256.Size]byte
	lastErr   string
	callbacks []func(*Config)

	lastOK    prometheus.Gauge
	lastOKAt  prometheus.Gauge
	reloads   *prometheus.CounterVec
	audits    prometheus.Gauge
	successes prometheus.Counter
	failures  prometheus.Counter
}

// NewWatcher loads the file at path; an error (unreadable or invalid file, or
// metrics that cannot be registered) is returned, and start-up should stop.
// It registers its metrics on reg (nil: not registered):
//
//	dcsjobs_audit_config_last_reload_successful               gauge, 1 or 0
//	dcsjobs_audit_config_last_reload_success_timestamp_seconds gauge
//	dcsjobs_audit_config_reloads_total{result="success"|"failure"} counter
//	dcsjobs_audit_config_audits                               gauge, audits loaded
//
// The first load sets the gauges but is not counted as a reload. Nothing is
// reloaded until Start.
func NewWatcher(path string, log zerolog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	w := &Watcher{
		path:         path,
		log:          log,
		pollInterval: DefaultPollInterval,
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dcsjobs_audit_config_last_reload_successful",
			Help: "Whether the last audit configuration reload attempt was successful (1) or not (0).",
		}),
		lastOKAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dcsjobs_audit_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful audit configuration load.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dcsjobs_audit_config_reloads_total",
			Help: "Audit configuration reload attempts (SIGHUP, file change or Reload), by result.",
		}, []string{"result"}),
		audits: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dcsjobs_audit_config_audits",
			Help: "Audits in the configuration in use.",
		}),
	}
	w.successes = w.reloads.WithLabelValues("success")
	w.failures = w.reloads.WithLabelValues("failure")

	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("audit config %s: %w", path, err)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{w.lastOK, w.lastOKAt, w.reloads, w.audits} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("audit config metrics: %w", err)
			}
		}
	}
	w.seen = sha256.Sum256(data)
	w.cur.Store(cfg)
	w.lastOK.Set(1)
	w.lastOKAt.SetToCurrentTime()
	w.audits.Set(float64(len(cfg.Audits)))
	log.Info().Str("path", path).Int("audits", len(cfg.Audits)).Msg("audit config loaded")
	return w, nil
}

// Current is the configuration in use: the last one that loaded. It never
// blocks and never returns nil after NewWatcher succeeded. Treat it as
// read-only.
func (w *Watcher) Current() *Config { return w.cur.Load() }

// OnChange registers f to be called after each successful reload whose
// configuration differs from the previous one (compared as parsed, so a
// comment or formatting change calls nothing). Callbacks run one at a time,
// in registration order, on the goroutine that reloaded; they must not call
// Reload.
func (w *Watcher) OnChange(f func(*Config)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.callbacks = append(w.callbacks, f)
}

// Reload reads and parses the file again, as SIGHUP does. On success the new
// configuration is used from now on; on failure the previous one stays, the
// error is logged (once until it changes or a reload succeeds), the
// last_reload_successful gauge drops to 0 and the error is returned. Either
// way the attempt is counted.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := readFile(w.path)
	if err == nil {
		w.seen = sha256.Sum256(data)
		var cfg *Config
		if cfg, err = Parse(data); err == nil {
			w.applyLocked(cfg)
			return nil
		}
		err = fmt.Errorf("audit config %s: %w", w.path, err)
	} else {
		w.seen = [sha256.Size]byte{} // read it again once readable
	}
	w.lastOK.Set(0)
	w.failures.Inc()
	if msg := err.Error(); msg != w.lastErr {
		w.lastErr = msg
		w.log.Error().Err(err).Str("path", w.path).Msg("audit config reload failed; keeping the previous configuration")
	}
	return err
}

func (w *Watcher) applyLocked(cfg *Config) {
	w.lastErr = ""
	w.lastOK.Set(1)
	w.lastOKAt.SetToCurrentTime()
	w.successes.Inc()
	w.audits.Set(float64(len(cfg.Audits)))
	if reflect.DeepEqual(w.cur.Load(), cfg) {
		w.log.Debug().Str("path", w.path).Msg("audit config reloaded, unchanged")
		return
	}
	w.cur.Store(cfg)
	w.log.Info().Str("path", w.path).Int("audits", len(cfg.Audits)).Msg("audit config reloaded")
	for _, f := range w.callbacks {
		f(cfg)
	}
}

// Start watches for SIGHUP and polls the file for changes until ctx ends. It
// returns at once, with the SIGHUP handler already installed (so a SIGHUP
// sent after Start returns reloads rather than kills the process). Calls
// after the first do nothing.
//
// The file is polled: read and hashed every second and reloaded when its
// content differs from what was last loaded (or failed to load). That sees
// in-place writes, a file renamed over the path, and the symlink swap of a
// Kubernetes ConfigMap volume alike, since the path is opened anew each time.
// A new content is loaded once it has been the same for two polls in a row,
// so a file caught half-written is not reported as a failed reload.
func (w *Watcher) Start(ctx context.Context) {
	if !w.started.CompareAndSwap(false, true) {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var tick <-chan time.Time
	var ticker *time.Ticker
	if w.pollInterval > 0 {
		ticker = time.NewTicker(w.pollInterval)
		tick = ticker.C
	}
	go func() {
		defer signal.Stop(hup)
		if ticker != nil {
			defer ticker.Stop()
		}
		var pending [sha256.Size]byte
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				w.log.Info().Str("path", w.path).Msg("SIGHUP: reloading the audit config")
				_ = w.Reload() // logged and counted by Reload
			case <-tick:
				pending = w.poll(pending)
			}
		}
	}()
}

// poll reloads when the file's content differs from the last one seen and
// equals the one seen at the previous poll (pending); it returns the new
// pending hash.
func (w *Watcher) poll(pending [sha256.Size]byte) [sha256.Size]byte {
	var h [sha256.Size]byte // zero: unreadable
	if data, err := readFile(w.path); err == nil {
		h = sha256.Sum256(data)
	}
	w.mu.Lock()
	changed := h != w.seen
	w.mu.Unlock()
	if !changed || h != pending {
		return h
	}
	_ = w.Reload() // logged and counted by Reload
	return h
}
