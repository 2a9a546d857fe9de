package metrics

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Version is the worker's version, set at build time with
// -ldflags "-X github.com/dcsjobs/dcsjobs/metrics.Version=v1.2.3".
var Version = "dev"

// NewBuildInfo returns the dcsjobs_build_info gauge (always 1).
func NewBuildInfo() prometheus.Collector {
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
		Help:        "Build information of the worker; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": Version, "revision": revision, "goversion": runtime.Version()}})
	g.Set(1)
	return g
}

// PoolCollector exports the go-redis connection pool statistics of the
// worker's Redis client.
type PoolCollector struct {
	rdb                           redis.UniversalClient
	hits, misses, timeouts, conns *prometheus.Desc
}

// NewPoolCollector returns the collector for rdb.
func NewPoolCollector(rdb redis.UniversalClient) *PoolCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "redis_pool", name), help, labels, nil)
	}
	return &PoolCollector{rdb: rdb,
		hits:     d("hits_total", "Times a free connection was found in the pool."),
		misses:   d("misses_total", "Times no free connection was found in the pool."),
		timeouts: d("timeouts_total", "Times waiting for a connection timed out."),
		conns:    d("connections", "Connections in the pool, by state (total, idle).", "state"),
	}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hits
	ch <- c.misses
	ch <- c.timeouts
	ch <- c.conns
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.rdb.PoolStats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.timeouts, prometheus.CounterValue, float64(s.Timeouts))
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.TotalConns), "total")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.IdleConns), "idle")
}
