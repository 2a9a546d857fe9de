package trigger

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// AlertmanagerPayload is the part of Alertmanager's webhook body (version "4")
// that is read. Unknown fields are accepted: Alertmanager adds fields within
// a version.
type AlertmanagerPayload struct {
	Version  string              `json:"version"`
	Status   string              `json:"status"`
	Receiver string              `json:"receiver"`
	Alerts   []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of the payload.
type AlertmanagerAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Fingerprint string            `json:"fingerprint"`
}

// name identifies an alert in skip reasons (alertname, else fingerprint).
func (a AlertmanagerAlert) name() string {
	if n := a.Labels["alertname"]; n != "" {
		return n
	}
	return a.Fingerprint
}

func firstLabel(labels map[string]string, names []string) (string, string) {
	for _, n := range names {
		if v := labels[n]; v != "" {
			return n, v
		}
	}
	return "", ""
}

// targets turns firing alerts into queries: the alerted node when a node label
// is present, otherwise every node of the instance. Resolved alerts are
// ignored, duplicates collapse, and an all-nodes query of an instance absorbs
// the node queries of the same instance.
func (p *AlertmanagerPayload) targets(instLabels, nodeLabels []string) ([]target, []Skipped) {
	var ts []target
	var skipped []Skipped
	for _, a := range p.Alerts {
		if a.Status != "firing" {
			continue
		}
		il, inst := firstLabel(a.Labels, instLabels)
		if inst == "" {
			skipped = append(skipped, Skipped{Alert: a.name(), Reason: fmt.Sprintf("no instance label (looked for %v)", instLabels)})
			continue
		}
		if err := dcsapi.ValidateID(il, inst); err != nil {
			skipped = append(skipped, Skipped{Alert: a.name(), Reason: err.Error()})
			continue
		}
		nl, node := firstLabel(a.Labels, nodeLabels)
		if node != "" {
			if err := dcsapi.ValidateID(nl, node); err != nil {
				skipped = append(skipped, Skipped{Alert: a.name(), Reason: err.Error()})
				continue
			}
		}
		ts = append(ts, target{instance: inst, node: node})
	}
	return dedupe(ts), skipped
}

// dedupe keeps the first of equal targets and drops node targets of an
// instance that is queried whole, preserving order.
func dedupe(ts []target) []target {
	whole := map[string]bool{}
	for _, t := range ts {
		if t.node == "" {
			whole[t.instance] = true
		}
	}
	seen := map[target]bool{}
	var out []target
	for _, t := range ts {
		if seen[t] || (t.node != "" && whole[t.instance]) {
			continue
		}
		seen[t] = true
		out = append(out, t)
	}
	return out
}

// submitOptions: alert-triggered queries ask DCS for a fresh list
// (clean_cache), since the alarm is about now.
func submitOptions(ts []target) []tasks.SubmitOptions {
	out := make([]tasks.SubmitOptions, 0, len(ts))
	for _, t := range ts {
		out = append(out, tasks.SubmitOptions{InstanceID: t.instance, NodeID: t.node, AllNodes: t.node == "",
			CleanCache: true, Origin: tasks.OriginTrigger})
	}
	return out
}

func (h *handler) postAlertmanager(w http.ResponseWriter, r *http.Request) {
	b, ok := h.readBody(w, r)
	if !ok {
		return
	}
	var p AlertmanagerPayload
	if err := json.Unmarshal(b, &p); err != nil {
		writeError(w, http.StatusBadRequest, jsonError(err).Error())
		return
	}
	if p.Version != "4" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("webhook version %q is not supported, want \"4\"", p.Version))
		return
	}
	ts, skipped := p.targets(h.o.AlertmanagerInstanceLabels, h.o.AlertmanagerNodeLabels)
	for _, s := range skipped {
		h.o.Log.Warn().Str("endpoint", "alertmanager").Str("alert", s.Alert).Str("reason", s.Reason).
			Msg("trigger: alert skipped")
	}
	h.submitAll(w, r, "alertmanager", submitOptions(ts), skipped, http.StatusAccepted)
}
