package results

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// Origins of a scan request.
const (
	OriginCLI      = "cli"
	OriginSchedule = "schedule"
	OriginTrigger  = "trigger"
	OriginDemo     = "demo"
)

// How the DCS job was seen to complete (Job.CompletionPath).
const (
	// CompletedByShowJob: ShowJobInfo reported SUCCESS.
	CompletedByShowJob = "show-job"
	// CompletedByListTime: the job was not (or could not be) polled to the end,
	// but ListClients returned a "time" newer than the request.
	CompletedByListTime = "list-time"
)

// Request is what asked for a scan.
type Request struct {
	// ID identifies the request; the snapshot it produces has the same ID.
	ID         string `json:"id"`
	InstanceID string `json:"instance_id"`
	NodeID     string `json:"node_id"`
	// CleanCache is the ScanClients clean_cache flag (force a fresh list).
	CleanCache bool `json:"clean_cache"`
	// Origin is one of OriginCLI, OriginSchedule, OriginTrigger, OriginDemo.
	Origin      string    `json:"origin"`
	RequestedAt time.Time `json:"requested_at"`
	// Audit names the scheduled audit that asked (origin schedule), if any.
	Audit string `json:"audit,omitempty"`
}

// Finding is one violated audit rule in a snapshot (package audit evaluates
// the rules).
type Finding struct {
	Audit string `json:"audit"`
	// Rule is one of idle_sessions, sessions_per_client_ip,
	// client_outside_cidrs, sessions_near_limit, new_clients.
	Rule string `json:"rule"`
	// Message is a sentence for humans, e.g. "12 sessions idle longer than 30m (max 0)".
	Message string `json:"message"`
	// Count is the number of offending sessions (client IPs for sessions_per_client_ip).
	Count int `json:"count"`
	// Examples are up to 10 offending addrs or IPs, sorted.
	Examples []string `json:"examples,omitempty"`
}

// Job is the DCS job that produced the session list.
type Job struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	BeginTime time.Time `json:"begin_time"`
	EndTime   time.Time `json:"end_time"`
	// CompletionPath is CompletedByShowJob or CompletedByListTime.
	CompletionPath string `json:"completion_path"`
	// Polls is how many ShowJobInfo calls were made.
	Polls int `json:"polls"`
}

// Snapshot is the session list of one node at one time, with what produced it
// and what was derived from it.
type Snapshot struct {
	// ID is the snapshot id: the id of the request that ran the scan.
	ID      string  `json:"id"`
	Request Request `json:"request"`
	Job     Job     `json:"job"`
	// DCSTime is ListClients "time" (when DCS took the list); DCSTimeRaw is
	// the text it was parsed from, kept because its format is unconfirmed.
	DCSTime    time.Time `json:"dcs_time"`
	DCSTimeRaw string    `json:"dcs_time_raw"`
	// FetchedAt is when this worker finished reading the list.
	FetchedAt time.Time `json:"fetched_at"`
	// Count is ListClients "count"; it may differ from len(Clients) if the
	// list changed while it was paged.
	Count   int                 `json:"count"`
	Clients []dcsapi.ClientInfo `json:"clients"`
	Summary Summary             `json:"summary"`
	// Diff against the previous snapshot of the node; nil for the first one.
	Diff *Diff `json:"diff,omitempty"`
	// Findings are the audit rules this snapshot violates (none: empty).
	Findings []Finding `json:"findings,omitempty"`
}

// InstanceID is the instance of the scanned node (from the request).
func (s *Snapshot) InstanceID() string { return s.Request.InstanceID }

// NodeID is the scanned node (from the request).
func (s *Snapshot) NodeID() string { return s.Request.NodeID }

// Time is the time the snapshot is ordered by in a node's history: FetchedAt,
// else DCSTime, else Request.RequestedAt. FetchedAt comes first because it is
// always set and read from this worker's clock, so snapshots of one node are
// comparable; the format and time zone of DCSTime are unconfirmed.
func (s *Snapshot) Time() time.Time {
	switch {
	case !s.FetchedAt.IsZero():
		return s.FetchedAt
	case !s.DCSTime.IsZero():
		return s.DCSTime
	default:
		return s.Request.RequestedAt
	}
}

// ErrInvalid is wrapped by validation errors (a snapshot that cannot be stored).
var ErrInvalid = errors.New("invalid")

// Validate checks what the store needs: a snapshot id and usable instance and
// node ids (non-empty, without ':', '/', '{', '}', spaces or control
// characters, which would make keys of different nodes ambiguous).
func (s *Snapshot) Validate() error {
	if s == nil {
		return fmt.Errorf("results: nil snapshot: %w", ErrInvalid)
	}
	if s.ID == "" {
		return fmt.Errorf("results: snapshot id is empty: %w", ErrInvalid)
	}
	if err := checkKeyPart("instance_id", s.Request.InstanceID); err != nil {
		return err
	}
	return checkKeyPart("node_id", s.Request.NodeID)
}

func checkKeyPart(field, v string) error {
	if v == "" {
		return fmt.Errorf("results: %s is empty: %w", field, ErrInvalid)
	}
	if i := strings.IndexFunc(v, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == ':' || r == '/' || r == '{' || r == '}'
	}); i >= 0 {
		return fmt.Errorf("results: %s %q has a forbidden character at %d: %w", field, v, i, ErrInvalid)
	}
	return nil
}
