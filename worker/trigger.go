package worker

import (
	"context"
	"fmt"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/dcsjobs/dcsjobs/config"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/trigger"
)

// newTrigger builds the trigger API when a token is configured (nil otherwise).
func newTrigger(cfg *config.Config, w *Worker, log zerolog.Logger) (http.Handler, error) {
	token, err := trigger.LoadToken(cfg.TriggerToken.Reveal(), cfg.TriggerTokenFile)
	if err != nil {
		return nil, fmt.Errorf("config TRIGGER_TOKEN: %w", err)
	}
	if token == "" {
		return nil, nil
	}
	h, err := trigger.NewHandler(trigger.Options{Token: token, Submitter: w.submit,
		Reader: triggerReader{w}, Log: log.With().Str("component", "trigger").Logger(), Registerer: w.registry})
	if err != nil {
		return nil, fmt.Errorf("trigger API: %w", err)
	}
	log.Info().Msg("trigger API enabled at /api/v1/")
	w.triggerToken = token
	return h, nil
}

// triggerReader gives the trigger API read access to requests and snapshots.
type triggerReader struct{ w *Worker }

func (r triggerReader) Status(ctx context.Context, id string) (*tasks.Status, error) {
	return r.w.reqs.Status(ctx, id)
}

func (r triggerReader) Get(ctx context.Context, instanceID, nodeID, snapshotID string) (*results.Snapshot, error) {
	return r.w.store.Get(ctx, instanceID, nodeID, snapshotID)
}
