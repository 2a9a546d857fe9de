// Package worker wires the product together: Redis, the DCS client and its
// shared API budget, the asynq server running the pipeline of package tasks,
// result storage, and the HTTP server (/healthz, /readyz). cmd/worker only
// parses configuration and calls Run; tests run the whole worker in-process.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/dcsjobs/dcsjobs/audit"
	"github.com/dcsjobs/dcsjobs/budget"
	"github.com/dcsjobs/dcsjobs/config"
	"github.com/dcsjobs/dcsjobs/console"
	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/metrics"
	"github.com/dcsjobs/dcsjobs/redisurl"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// NewLogger returns the process logger: JSON, or human-readable when format
// is "console" or "auto" on a terminal.
func NewLogger(w io.Writer, format, level string) zerolog.Logger {
	if format == "console" || (format == "auto" && isTerminal(w)) {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// PipelineConfig derives the pipeline settings from the worker config.
func PipelineConfig(c *config.Config) tasks.Config {
	return tasks.Config{
		Poll:          tasks.PollSchedule{First: c.PollFirst, Next: c.PollNext, Factor: c.PollFactor, Max: c.PollMax},
		Deadline:      c.Deadline,
		MaxRetry:      c.MaxRetry,
		TaskRetention: 10 * time.Minute,
		Summary:       results.SummaryOptions{IdleThreshold: c.IdleThreshold},
	}
}

// Options are what Run needs beyond the config; zero values are fine.
type Options struct {
	// Redis, when set, is used instead of dialing cfg.RedisURL (the demo's
	// embedded Redis). Run does not close it.
	Redis redis.UniversalClient
	// Ready is called with the HTTP server's address once the worker runs.
	Ready func(httpAddr string)
	// HTTPClient for DCS calls (tests); default a tuned shared client.
	HTTPClient *http.Client
}

// Worker is a running worker.
type Worker struct {
	cfg       *config.Config
	log       zerolog.Logger
	rdb       redis.UniversalClient
	dcs       *dcsapi.Client
	reqs      *tasks.Requests
	store     *results.Store
	client    *asynq.Client
	server    *asynq.Server
	submit    *tasks.Submitter
	http      *http.Server
	httpAddr  string
	registry  *prometheus.Registry
	metrics   *metrics.Metrics
	audits    *audit.Watcher
	scheduler *asynq.PeriodicTaskManager
	trigger   http.Handler
	// triggerToken is the trigger API's token ("" when off), also the
	// console's credential for its "query now" button.
	triggerToken string
	cancel       context.CancelFunc
	healthy      atomic.Bool
	ownRedis     bool
}

// Run starts a worker and blocks until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, cfg *config.Config, log zerolog.Logger, opts Options) error {
	w, err := Start(ctx, cfg, log, opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return w.Shutdown()
}

// Start builds and starts a worker.
func Start(ctx context.Context, cfg *config.Config, log zerolog.Logger, opts Options) (*Worker, error) {
	w := &Worker{cfg: cfg, log: log, rdb: opts.Redis, ownRedis: opts.Redis == nil}
	ownRedis := w.ownRedis
	if ownRedis {
		p, err := redisurl.Parse(cfg.RedisURL.Reveal())
		if err != nil {
			return nil, fmt.Errorf("config REDIS_URL: %w", err)
		}
		w.rdb = p.NewClient()
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := w.rdb.Ping(pingCtx).Err()
	cancel()
	if err != nil {
		if ownRedis {
			_ = w.rdb.Close()
		}
		return nil, fmt.Errorf("redis %s: %w", redisurl.Redact(cfg.RedisURL.Reveal()), err)
	}
	// On any failure below, undo what was started.
	started, serverStarted := false, false
	defer func() {
		if started {
			return
		}
		if w.scheduler != nil {
			w.scheduler.Shutdown()
		}
		if serverStarted {
			w.server.Shutdown()
		}
		if w.cancel != nil {
			w.cancel()
		}
		if w.ownRedis {
			_ = w.rdb.Close()
		}
	}()
	w.registry = prometheus.NewRegistry()
	w.metrics = metrics.New(w.registry)
	dcsCfg := dcsapi.Config{Endpoint: cfg.DCSEndpoint, Region: cfg.DCSRegion, ProjectID: cfg.ProjectID,
		Auth: cfg.Auth(), Timeout: cfg.DCSTimeout, HTTPClient: opts.HTTPClient, Observe: w.metrics.ObserveDCS}
	if cfg.APIBudget.N > 0 {
		b := budget.New(w.rdb, cfg.KeyPrefix, cfg.ProjectID, cfg.RegionKey(), cfg.APIBudget, cfg.APIBurst, time.Second)
		b.OnWait = w.metrics.BudgetWait
		dcsCfg.Wait = b.Wait
	}
	if w.dcs, err = dcsapi.New(dcsCfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	pc := PipelineConfig(cfg)
	w.reqs = tasks.NewRequests(w.rdb, cfg.KeyPrefix, cfg.Retention)
	w.store = results.NewStore(w.rdb, results.StoreOptions{Prefix: cfg.KeyPrefix, Retention: cfg.Retention, HistoryMax: cfg.HistoryMax})
	w.client = asynq.NewClientFromRedisClient(w.rdb)
	w.submit = tasks.NewSubmitter(w.client, w.reqs, pc)
	insts := tasks.NewInstances(w.rdb, cfg.KeyPrefix, cfg.Retention)
	var auditSrc tasks.AuditSource
	var bg context.Context
	bg, w.cancel = context.WithCancel(context.Background())
	if cfg.AuditConfig != "" {
		if w.audits, err = audit.NewWatcher(cfg.AuditConfig, log, w.registry); err != nil {
			return nil, fmt.Errorf("config AUDIT_CONFIG: %w", err)
		}
		w.audits.Start(bg)
		auditSrc = w.audits
	}
	handlers := tasks.NewHandlers(tasks.Deps{DCS: w.dcs, Enqueuer: w.client, Requests: w.reqs, Store: w.store,
		Instances: insts, Audits: auditSrc, Log: log, Observer: w.metrics}, pc)
	mux := asynq.NewServeMux()
	mux.Use(w.metrics.Middleware(tasks.IsFailure))
	handlers.Register(mux)
	w.registry.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		metrics.NewBuildInfo(),
		metrics.NewPoolCollector(w.rdb),
		metrics.NewQueueCollector(asynq.NewInspectorFromRedisClient(w.rdb)),
		metrics.NewSessionCollector(w.store, insts, metrics.SessionCollectorOptions{
			TopClientIPs: cfg.TopClientIPs, IdleThreshold: cfg.IdleThreshold}),
	)
	w.server = asynq.NewServerFromRedisClient(w.rdb, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   pc.Queues.Priorities(cfg.Weights.Followup, cfg.Weights.Trigger, cfg.Weights.Default, cfg.Weights.Schedule),
		IsFailure:                tasks.IsFailure,
		RetryDelayFunc:           tasks.RetryDelayFunc(pc.Backoff),
		TaskCheckInterval:        100 * time.Millisecond,
		DelayedTaskCheckInterval: time.Second,
		ShutdownTimeout:          10 * time.Second,
		Logger:                   asynqLogger{log.With().Str("component", "asynq").Logger()},
		LogLevel:                 asynq.WarnLevel,
		HealthCheckFunc: func(err error) {
			w.healthy.Store(err == nil)
			if err != nil {
				log.Warn().Err(err).Msg("queue health check failed")
			}
		},
		HealthCheckInterval: 5 * time.Second,
	})
	if err := w.server.Start(mux); err != nil {
		return nil, fmt.Errorf("start queue server: %w", err)
	}
	serverStarted = true
	if w.audits != nil {
		if err := w.startScheduler(w.audits, pc.Queues.ForOrigin(tasks.OriginSchedule), 3, log); err != nil {
			return nil, fmt.Errorf("start audit scheduler: %w", err)
		}
	}
	if w.trigger, err = newTrigger(cfg, w, log); err != nil {
		return nil, err
	}
	w.healthy.Store(true)
	if err := w.startHTTP(); err != nil {
		return nil, err
	}
	started = true
	log.Info().Str("redis", redisurl.Redact(cfg.RedisURL.Reveal())).Str("dcs", w.dcs.Endpoint()).
		Str("http", w.httpAddr).Int("concurrency", cfg.Concurrency).Str("api_budget", cfg.APIBudget.String()).
		Msg("worker started")
	if opts.Ready != nil {
		opts.Ready(w.httpAddr)
	}
	return w, nil
}

func (w *Worker) startHTTP() error {
	if w.cfg.HTTPAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", w.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("config HTTP_ADDR %q: %w", w.cfg.HTTPAddr, err)
	}
	w.httpAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(rw, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := w.rdb.Ping(ctx).Err(); err != nil || !w.healthy.Load() {
			http.Error(rw, "not ready: redis unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(rw, "ready\n")
	})
	if w.trigger != nil {
		mux.Handle("/api/v1/", w.trigger)
	}
	con, err := w.newConsole()
	if err != nil {
		_ = ln.Close()
		return err
	}
	mux.Handle(console.DefaultPrefix, con)
	mux.Handle("GET /{$}", http.RedirectHandler(console.DefaultPrefix, http.StatusFound))
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError, Registry: w.registry}))
	w.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	webCfg := &web.FlagConfig{WebConfigFile: &w.cfg.WebConfigFile}
	slogger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		if err := web.Serve(ln, w.http, webCfg, slogger); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error().Err(err).Msg("http server stopped")
		}
	}()
	return nil
}

// Submitter submits requests through this worker's Redis.
func (w *Worker) Submitter() *tasks.Submitter { return w.submit }

// Requests is the request store.
func (w *Worker) Requests() *tasks.Requests { return w.reqs }

// Store is the result store.
func (w *Worker) Store() *results.Store { return w.store }

// Audits is the audit configuration watcher (nil without AUDIT_CONFIG).
func (w *Worker) Audits() *audit.Watcher { return w.audits }

// Registry is the worker's Prometheus registry.
func (w *Worker) Registry() *prometheus.Registry { return w.registry }

// HTTPAddr is the address the HTTP server listens on ("" when disabled).
func (w *Worker) HTTPAddr() string { return w.httpAddr }

// Shutdown stops taking tasks, waits for running ones (up to asynq's
// ShutdownTimeout, after which they are re-queued), and closes everything.
func (w *Worker) Shutdown() error {
	w.log.Info().Msg("shutting down")
	if w.scheduler != nil {
		w.scheduler.Shutdown()
	}
	w.server.Shutdown()
	if w.cancel != nil {
		w.cancel()
	}
	if w.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = w.http.Shutdown(ctx)
		cancel()
	}
	if w.ownRedis {
		_ = w.rdb.Close()
	}
	w.log.Info().Msg("stopped")
	return nil
}

// newConsole builds the web console; its "query now" button exists only when
// the trigger API is enabled, and takes the same token.
func (w *Worker) newConsole() (http.Handler, error) {
	opts := console.Options{Store: w.store, Requests: w.reqs,
		OnError: func(r *http.Request, err error) {
			w.log.Warn().Err(err).Str("path", r.URL.Path).Msg("console error")
		}}
	if w.trigger != nil {
		opts.Submit, opts.Token = w.submit.Submit, w.triggerToken
	}
	h, err := console.NewHandler(opts)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return h, nil
}

// asynqLogger adapts zerolog to asynq.Logger.
type asynqLogger struct{ l zerolog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error().Msg(fmt.Sprint(args...)) } // asynq never calls it; never exit from a library
