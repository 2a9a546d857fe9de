package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// QueryRequest is the body of POST /api/v1/queries: an instance and exactly
// one of NodeID, NodeIDs or AllNodes.
type QueryRequest struct {
	InstanceID string   `json:"instance_id"`
	NodeID     string   `json:"node_id,omitempty"`
	NodeIDs    []string `json:"node_ids,omitempty"`
	AllNodes   bool     `json:"all_nodes,omitempty"`
	CleanCache bool     `json:"clean_cache,omitempty"`
}

// Submitted describes one submitted request.
type Submitted struct {
	ID         string `json:"id"`
	InstanceID string `json:"instance_id"`
	NodeID     string `json:"node_id,omitempty"`
	AllNodes   bool   `json:"all_nodes,omitempty"`
	StatusURL  string `json:"status_url"`
	// Duplicate: the request already existed (a redelivered SMN message).
	Duplicate bool `json:"duplicate,omitempty"`
}

// SubmitResponse answers the POST endpoints.
type SubmitResponse struct {
	Requests []Submitted `json:"requests"`
	// Skipped lists alerts or alarms that did not lead to a query, with why.
	Skipped []Skipped `json:"skipped,omitempty"`
}

// Skipped is an alert (or alarm) that was not turned into a query.
type Skipped struct {
	Alert  string `json:"alert,omitempty"`
	Reason string `json:"reason"`
}

// target is one query to submit.
type target struct {
	instance, node string // node "" = all nodes
}

// options turns the request into submit options, validated; the error names
// the field and value at fault.
func (q *QueryRequest) options() ([]tasks.SubmitOptions, error) {
	if err := dcsapi.ValidateID("instance_id", q.InstanceID); err != nil {
		return nil, err
	}
	given := 0
	for _, b := range []bool{q.NodeID != "", q.NodeIDs != nil, q.AllNodes} {
		if b {
			given++
		}
	}
	if given != 1 {
		return nil, errors.New("give exactly one of node_id, node_ids or all_nodes")
	}
	base := tasks.SubmitOptions{InstanceID: q.InstanceID, CleanCache: q.CleanCache, Origin: tasks.OriginTrigger}
	var out []tasks.SubmitOptions
	switch {
	case q.AllNodes:
		o := base
		o.AllNodes = true
		out = append(out, o)
	case q.NodeID != "":
		if err := dcsapi.ValidateID("node_id", q.NodeID); err != nil {
			return nil, err
		}
		o := base
		o.NodeID = q.NodeID
		out = append(out, o)
	default:
		if len(q.NodeIDs) == 0 {
			return nil, errors.New("node_ids is empty")
		}
		if len(q.NodeIDs) > MaxNodes {
			return nil, fmt.Errorf("node_ids has %d entries, at most %d", len(q.NodeIDs), MaxNodes)
		}
		seen := map[string]bool{}
		for i, n := range q.NodeIDs {
			if err := dcsapi.ValidateID(fmt.Sprintf("node_ids[%d]", i), n); err != nil {
				return nil, err
			}
			if seen[n] {
				continue
			}
			seen[n] = true
			o := base
			o.NodeID = n
			out = append(out, o)
		}
	}
	for _, o := range out {
		if err := o.Validate(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeStrict decodes one JSON object, refusing unknown fields and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("body has data after the JSON object")
	}
	return nil
}

// jsonError rephrases decoding errors for a caller (no Go type names).
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("body is not valid JSON: %v (at byte %d)", se, se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Errorf("field %q must be a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return fmt.Errorf("body must be a JSON object, not %s", te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("body is not valid JSON: unexpected end")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return fmt.Errorf("body is not valid JSON: %v", err)
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	}
	return "number"
}

func (h *handler) postQueries(w http.ResponseWriter, r *http.Request) {
	b, ok := h.readBody(w, r)
	if !ok {
		return
	}
	var q QueryRequest
	if err := decodeStrict(b, &q); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	opts, err := q.options()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.submitAll(w, r, "queries", opts, nil, http.StatusAccepted)
}

// submitAll submits every option and answers with the request ids. A failure
// part-way answers 500 and still lists what was submitted.
func (h *handler) submitAll(w http.ResponseWriter, r *http.Request, endpoint string, opts []tasks.SubmitOptions, skipped []Skipped, code int) {
	resp := SubmitResponse{Requests: []Submitted{}, Skipped: skipped}
	var ids, instances []string
	fresh := 0
	for _, o := range opts {
		req, err := h.o.Submitter.Submit(r.Context(), o)
		if o.ID != "" && errors.Is(err, tasks.ErrDuplicateRequest) {
			h.o.Log.Info().Str("endpoint", endpoint).Str("request", o.ID).Str("client", clientIP(r)).
				Msg("trigger: redelivery of an accepted trigger; nothing submitted")
			resp.Requests = append(resp.Requests, Submitted{ID: o.ID, InstanceID: o.InstanceID, NodeID: o.NodeID,
				AllNodes: o.AllNodes, StatusURL: PathQueries + "/" + o.ID, Duplicate: true})
			continue
		}
		if err != nil {
			h.o.Log.Error().Err(err).Str("endpoint", endpoint).Str("instance", o.InstanceID).
				Str("node", o.NodeID).Str("client", clientIP(r)).Msg("trigger: submitting a query failed")
			writeJSON(w, http.StatusInternalServerError, struct {
				Error    string      `json:"error"`
				Requests []Submitted `json:"requests"`
			}{"submitting the query failed; see the worker log", resp.Requests})
			return
		}
		resp.Requests = append(resp.Requests, Submitted{ID: req.ID, InstanceID: req.InstanceID, NodeID: req.NodeID,
			AllNodes: req.AllNodes, StatusURL: PathQueries + "/" + req.ID})
		ids = append(ids, req.ID)
		fresh++
		if len(instances) == 0 || instances[len(instances)-1] != req.InstanceID {
			instances = append(instances, req.InstanceID)
		}
	}
	if fresh == 0 {
		code = http.StatusOK
	} else {
		h.o.Log.Info().Str("endpoint", endpoint).Strs("instances", instances).Strs("requests", ids).
			Str("client", clientIP(r)).Msg("trigger: queries submitted")
	}
	writeJSON(w, code, resp)
}

// StatusResponse is GET /api/v1/queries/{id}: the request record, its events
// and children, and State, aggregated over the children of an all-nodes request.
type StatusResponse struct {
	State    tasks.State     `json:"state"`
	Request  *tasks.Request  `json:"request"`
	Events   []tasks.Event   `json:"events"`
	Children []tasks.Request `json:"children,omitempty"`
}

// status reads the request named in the path; on failure it has answered.
func (h *handler) status(w http.ResponseWriter, r *http.Request) (*tasks.Status, bool) {
	id := r.PathValue("id")
	if err := tasks.ValidateRequestID(id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	st, err := h.o.Reader.Status(r.Context(), id)
	switch {
	case errors.Is(err, tasks.ErrRequestNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("request %s not found", id))
		return nil, false
	case err != nil:
		h.o.Log.Error().Err(err).Str("request", id).Msg("trigger: reading a request failed")
		writeError(w, http.StatusInternalServerError, "reading the request failed; see the worker log")
		return nil, false
	}
	return st, true
}

func (h *handler) getStatus(w http.ResponseWriter, r *http.Request) {
	st, ok := h.status(w, r)
	if !ok {
		return
	}
	events := st.Events
	if events == nil {
		events = []tasks.Event{}
	}
	writeJSON(w, http.StatusOK, StatusResponse{State: st.State(), Request: st.Request, Events: events, Children: st.Children})
}

// Failure is one failed request of a result that failed.
type Failure struct {
	Request string `json:"request"`
	NodeID  string `json:"node_id,omitempty"`
	Error   string `json:"error"`
}

func (h *handler) getResult(w http.ResponseWriter, r *http.Request) {
	st, ok := h.status(w, r)
	if !ok {
		return
	}
	state := st.State()
	if !state.Terminal() {
		writeError(w, http.StatusConflict, fmt.Sprintf("request is %s", state))
		return
	}
	reqs := []tasks.Request{*st.Request}
	if st.Request.AllNodes {
		reqs = st.Children
	}
	if state == tasks.StateFailed {
		var fs []Failure
		for _, c := range reqs {
			if c.State == tasks.StateFailed {
				fs = append(fs, Failure{Request: c.ID, NodeID: c.NodeID, Error: c.Error})
			}
		}
		if len(fs) == 0 { // an all-nodes request that failed before it had children
			fs = append(fs, Failure{Request: st.Request.ID, Error: st.Request.Error})
		}
		reason := "request failed: " + fs[0].Error
		if len(fs) > 1 || st.Request.AllNodes {
			reason = fmt.Sprintf("request failed on %d node(s); first: %s", len(fs), fs[0].Error)
		}
		writeJSON(w, http.StatusUnprocessableEntity, struct {
			Error    string    `json:"error"`
			Failures []Failure `json:"failures"`
		}{reason, fs})
		return
	}
	snaps := make([]*results.Snapshot, 0, len(reqs))
	for _, c := range reqs {
		s, err := h.snapshot(r.Context(), &c)
		if errors.Is(err, results.ErrNotFound) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("snapshot %s of request %s not found (expired?)", c.SnapshotID, c.ID))
			return
		}
		if err != nil {
			h.o.Log.Error().Err(err).Str("request", c.ID).Msg("trigger: reading a snapshot failed")
			writeError(w, http.StatusInternalServerError, "reading the snapshot failed; see the worker log")
			return
		}
		snaps = append(snaps, s)
	}
	if st.Request.AllNodes {
		writeJSON(w, http.StatusOK, snaps)
		return
	}
	writeJSON(w, http.StatusOK, snaps[0])
}

func (h *handler) snapshot(ctx context.Context, r *tasks.Request) (*results.Snapshot, error) {
	if r.SnapshotID == "" {
		return nil, fmt.Errorf("request %s is done without a snapshot id: %w", r.ID, results.ErrNotFound)
	}
	return h.o.Reader.Get(ctx, r.InstanceID, r.NodeID, r.SnapshotID)
}
