package tasks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
)

// Task types. None is a prefix of another: asynq's ServeMux routes by prefix.
const (
	TypeScan     = "dcs:scan"
	TypePoll     = "dcs:poll"
	TypeFetch    = "dcs:fetch"
	TypeDiscover = "dcs:discover"
)

// AllTypes lists every task type the worker handles.
var AllTypes = []string{TypeScan, TypePoll, TypeFetch, TypeDiscover, TypeAudit}

// Payload is the body of every task: only the request id (and the poll
// number), never credentials or request details — those live in the request
// record.
type Payload struct {
	RequestID string `json:"request_id"`
	Poll      int    `json:"poll,omitempty"`
}

// MaxRequestIDLength bounds request ids (a child id is parent_node).
const MaxRequestIDLength = 128

// ValidateRequestID checks a request id: 1-128 characters of A-Z a-z 0-9 '-' '_'.
func ValidateRequestID(id string) error {
	if id == "" {
		return fmt.Errorf("request id is empty")
	}
	if len(id) > MaxRequestIDLength {
		return fmt.Errorf("request id is %d characters long, at most %d", len(id), MaxRequestIDLength)
	}
	if i := strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}); i >= 0 {
		return fmt.Errorf("request id %q has an invalid character at position %d", id, i+1)
	}
	return nil
}

func newTask(typ string, p Payload) *asynq.Task {
	b, _ := json.Marshal(p) // cannot fail: two plain fields
	return asynq.NewTask(typ, b)
}

// decodePayload parses and validates a task's payload. Errors wrap
// asynq.SkipRetry: a malformed task is archived with the reason, not retried.
func decodePayload(t *asynq.Task) (Payload, error) {
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(t.Payload()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%w: malformed %s payload %.80q: %v", asynq.SkipRetry, t.Type(), t.Payload(), err)
	}
	if err := ValidateRequestID(p.RequestID); err != nil {
		return p, fmt.Errorf("%w: malformed %s payload: %v", asynq.SkipRetry, t.Type(), err)
	}
	if t.Type() == TypePoll && p.Poll < 1 {
		return p, fmt.Errorf("%w: malformed %s payload: poll %d, want >= 1", asynq.SkipRetry, t.Type(), p.Poll)
	}
	return p, nil
}

// Task ids are deterministic, so a re-run that enqueues the same follow-up
// gets asynq.ErrTaskIDConflict instead of forking a second chain.
func scanTaskID(req string) string        { return "scan:" + req }
func discoverTaskID(req string) string    { return "discover:" + req }
func pollTaskID(req string, n int) string { return fmt.Sprintf("poll:%s:%d", req, n) }
func fetchTaskID(req string) string       { return "fetch:" + req }
