package worker

import (
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/dcsjobs/dcsjobs/tasks"
)

// auditTasks turns the audit configuration in force into asynq periodic
// tasks: one tick per audit on its schedule. Every replica runs a manager;
// the ticks' requests have ids deterministic per audit, slot and node, so a
// slot is audited once however many replicas tick.
type auditTasks struct {
	src   tasks.AuditSource
	queue string
	retry int
}

// GetConfigs implements asynq.PeriodicTaskConfigProvider.
func (p auditTasks) GetConfigs() ([]*asynq.PeriodicTaskConfig, error) {
	cfg := p.src.Current()
	if cfg == nil {
		return nil, nil
	}
	out := make([]*asynq.PeriodicTaskConfig, 0, len(cfg.Audits))
	for _, a := range cfg.Audits {
		out = append(out, &asynq.PeriodicTaskConfig{Cronspec: a.Schedule, Task: tasks.NewAuditTask(a.Name),
			Opts: []asynq.Option{asynq.Queue(p.queue), asynq.MaxRetry(p.retry), asynq.Timeout(2 * time.Minute),
				asynq.Retention(time.Minute)}})
	}
	return out, nil
}

// auditSyncInterval is how soon a reloaded audit file changes the schedules.
const auditSyncInterval = 5 * time.Second

func (w *Worker) startScheduler(src tasks.AuditSource, queue string, retry int, log zerolog.Logger) error {
	m, err := asynq.NewPeriodicTaskManager(asynq.PeriodicTaskManagerOpts{
		PeriodicTaskConfigProvider: auditTasks{src: src, queue: queue, retry: retry},
		RedisUniversalClient:       w.rdb,
		SyncInterval:               auditSyncInterval,
		SchedulerOpts: &asynq.SchedulerOpts{
			Logger: asynqLogger{log.With().Str("component", "scheduler").Logger()},
			// asynq logs an error when the scheduler does not close the shared
			// Redis client; enqueue failures are logged below instead.
			LogLevel: asynq.FatalLevel,
			PostEnqueueFunc: func(info *asynq.TaskInfo, err error) {
				if err != nil {
					log.Warn().Err(err).Msg("audit tick not enqueued")
				}
			},
		},
	})
	if err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		return err
	}
	w.scheduler = m
	return nil
}
