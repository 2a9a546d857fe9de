package metrics

import (
	"strings"

	"github.com/hibiken/asynq"
	xmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// QueueCollector exports asynq's queue gauges through asynq's own x/metrics
// collector, renaming the two gauges whose "_total" suffix breaks Prometheus
// naming rules (promtool check metrics rejects them):
//
//	asynq_tasks_enqueued_total (a gauge) → asynq_queue_tasks{queue,state}
//	asynq_queue_paused_total   (a gauge) → asynq_queue_paused{queue}
//
// Every other family (asynq_queue_size, asynq_queue_latency_seconds,
// asynq_queue_memory_usage_approx_bytes, asynq_tasks_processed_total,
// asynq_tasks_failed_total) passes through unchanged.
type QueueCollector struct {
	inner  prometheus.Collector
	rename map[string]*prometheus.Desc
}

// renamedQueueMetrics maps x/metrics names to ours.
var renamedQueueMetrics = map[string]struct {
	name, help string
	labels     []string
}{
	"asynq_tasks_enqueued_total": {"asynq_queue_tasks", "Tasks in each queue, by state (active, pending, scheduled, retry, archived, completed).", []string{"queue", "state"}},
	"asynq_queue_paused_total":   {"asynq_queue_paused", "1 when the queue is paused, else 0.", []string{"queue"}},
}

// NewQueueCollector wraps x/metrics' collector of insp.
func NewQueueCollector(insp *asynq.Inspector) *QueueCollector {
	c := &QueueCollector{inner: xmetrics.NewQueueMetricsCollector(insp), rename: map[string]*prometheus.Desc{}}
	for old, r := range renamedQueueMetrics {
		c.rename[old] = prometheus.NewDesc(r.name, r.help, r.labels, nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	inner := make(chan *prometheus.Desc)
	go func() { c.inner.Describe(inner); close(inner) }()
	for d := range inner {
		if r := c.renamed(d.String()); r != nil {
			d = r
		}
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	inner := make(chan prometheus.Metric)
	go func() { c.inner.Collect(inner); close(inner) }()
	for m := range inner {
		r := c.renamed(m.Desc().String())
		if r == nil {
			ch <- m
			continue
		}
		var pb dto.Metric
		if err := m.Write(&pb); err != nil || pb.Gauge == nil {
			continue
		}
		labels := make([]string, 0, len(pb.Label))
		for _, want := range renamedQueueMetrics[c.oldName(r)].labels {
			for _, l := range pb.Label {
				if l.GetName() == want {
					labels = append(labels, l.GetValue())
				}
			}
		}
		ch <- prometheus.MustNewConstMetric(r, prometheus.GaugeValue, pb.Gauge.GetValue(), labels...)
	}
}

// renamed returns the new Desc for a Desc string of a renamed family.
func (c *QueueCollector) renamed(desc string) *prometheus.Desc {
	for old, d := range c.rename {
		if strings.Contains(desc, `fqName: "`+old+`"`) {
			return d
		}
	}
	return nil
}

func (c *QueueCollector) oldName(d *prometheus.Desc) string {
	for old, r := range c.rename {
		if r == d {
			return old
		}
	}
	return ""
}
