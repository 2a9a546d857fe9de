package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// SessionCollectorOptions tune the session gauges.
type SessionCollectorOptions struct {
	// CacheFor is how long one read of Redis serves scrapes (default 10s);
	// several Prometheus servers scraping one worker cost one read.
	CacheFor time.Duration
	// TopClientIPs, when > 0, exports dcsjobs_node_sessions_by_client_ip for
	// the N client IPs with most sessions per node. Hard-capped at
	// MaxTopClientIPs. Default 0: off (one series per IP is a cardinality risk).
	TopClientIPs int
	// Timeout bounds one read of Redis (default 5s).
	Timeout time.Duration
	// IdleThreshold is exported as dcsjobs_idle_threshold_seconds.
	IdleThreshold time.Duration
}

// MaxTopClientIPs caps TopClientIPs.
const MaxTopClientIPs = 20

// SessionCollector exports per-node session gauges from the latest stored
// snapshot of each node. It reads Redis at scrape time (cached briefly), so
// every replica reports the same values and a restart loses nothing. When
// Redis does not answer, it reports dcsjobs_store_up 0 and no node series,
// and the scrape still succeeds.
type SessionCollector struct {
	store *results.Store
	insts *tasks.Instances
	opts  SessionCollectorOptions

	mu     sync.Mutex
	cached []prometheus.Metric
	at     time.Time

	up, threshold, sessions, idle, ips, oldest, lastAudit, byDB, byIP, maxClients, violations *prometheus.Desc
}

// NewSessionCollector returns the collector; insts may be nil.
func NewSessionCollector(store *results.Store, insts *tasks.Instances, opts SessionCollectorOptions) *SessionCollector {
	if opts.CacheFor <= 0 {
		opts.CacheFor = 10 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	opts.TopClientIPs = min(max(opts.TopClientIPs, 0), MaxTopClientIPs)
	node := []string{"instance_id", "node_id"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
	}
	return &SessionCollector{store: store, insts: insts, opts: opts,
		up:         d("store_up", "1 when the snapshot store in Redis answered at the last read, else 0."),
		threshold:  d("idle_threshold_seconds", "Sessions idle longer than this count in dcsjobs_node_sessions_idle."),
		sessions:   d("node_sessions", "Client sessions of the node in its latest snapshot.", node...),
		idle:       d("node_sessions_idle", "Sessions idle longer than the idle threshold in the latest snapshot.", node...),
		ips:        d("node_client_ips", "Distinct client IPs in the latest snapshot.", node...),
		oldest:     d("node_oldest_connection_age_seconds", "Age of the oldest connection in the latest snapshot.", node...),
		lastAudit:  d("node_last_audit_timestamp_seconds", "When the latest snapshot of the node was fetched (Unix time).", node...),
		byDB:       d("node_sessions_by_db", "Sessions per db index in the latest snapshot.", "instance_id", "node_id", "db"),
		byIP:       d("node_sessions_by_client_ip", "Sessions of the top client IPs of the node (opt-in, capped).", "instance_id", "node_id", "client_ip"),
		maxClients: d("instance_max_clients", "maxclients per node of the instance, from DCS ShowInstance.", "instance_id"),
		violations: d("node_audit_violations", "Offending sessions (client IPs for sessions_per_client_ip) of each audit rule the node's latest snapshot violates; absent when the rule holds.",
			"instance_id", "node_id", "audit", "rule"),
	}
}

// Describe implements prometheus.Collector.
func (c *SessionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.threshold, c.sessions, c.idle, c.ips, c.oldest, c.lastAudit, c.byDB, c.byIP, c.maxClients, c.violations} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *SessionCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if c.cached == nil || time.Since(c.at) >= c.opts.CacheFor {
		c.cached = c.read()
		c.at = time.Now()
	}
	ms := c.cached
	c.mu.Unlock()
	for _, m := range ms {
		ch <- m
	}
}

func (c *SessionCollector) read() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	out := []prometheus.Metric{
		prometheus.MustNewConstMetric(c.threshold, prometheus.GaugeValue, c.opts.IdleThreshold.Seconds()),
	}
	down := append(out, prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0))
	nodes, err := c.store.Nodes(ctx)
	if err != nil {
		return down
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	instances := map[string]bool{}
	for _, n := range nodes {
		m, err := c.store.LatestSummary(ctx, n.InstanceID, n.NodeID)
		if err != nil {
			if ctx.Err() != nil {
				return down
			}
			continue // expired between the two reads
		}
		l := []string{n.InstanceID, n.NodeID}
		s := m.Summary
		g(c.sessions, float64(m.Count), l...)
		g(c.idle, float64(s.IdleOver), l...)
		g(c.ips, float64(s.DistinctClientIPs), l...)
		g(c.oldest, float64(s.OldestConnection.Age), l...)
		g(c.lastAudit, float64(m.FetchedAt.UnixMilli())/1000, l...)
		for _, k := range s.ByDB.Top {
			g(c.byDB, float64(k.Sessions), n.InstanceID, n.NodeID, k.DisplayKey())
		}
		for i, k := range s.ByClientIP.Top {
			if i >= c.opts.TopClientIPs {
				break
			}
			g(c.byIP, float64(k.Sessions), n.InstanceID, n.NodeID, k.DisplayKey())
		}
		for _, f := range m.Findings {
			g(c.violations, float64(f.Count), n.InstanceID, n.NodeID, f.Audit, f.Rule)
		}
		instances[n.InstanceID] = true
	}
	if c.insts != nil {
		for id := range instances {
			if info, ok, err := c.insts.Get(ctx, id); err == nil && ok && info.MaxClients > 0 {
				g(c.maxClients, float64(info.MaxClients), id)
			}
		}
	}
	return append(out, prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1))
}
