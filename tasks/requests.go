package tasks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/results"
)

// State is where a request is in the pipeline.
type State string

// Request states. Done and Failed are terminal.
const (
	StateQueued      State = "queued"      // submitted, scan task not yet run
	StateDiscovering State = "discovering" // all-nodes request listing the nodes
	StateDispatched  State = "dispatched"  // all-nodes request whose children are submitted
	StateScanning    State = "scanning"    // ScanClients being called
	StatePolling     State = "polling"     // waiting for the DCS job
	StateAttached    State = "attached"    // sharing the scan of another request
	StateFetching    State = "fetching"    // reading the session list
	StateDone        State = "done"        // a snapshot is stored
	StateFailed      State = "failed"      // see Error
)

// Terminal reports whether s is final.
func (s State) Terminal() bool { return s == StateDone || s == StateFailed }

// Completion paths: which signal said the DCS job was complete.
const (
	PathShowJob  = results.CompletedByShowJob  // GET /jobs/{job_id} answered SUCCESS
	PathListTime = results.CompletedByListTime // ListClients' time moved past the scan request
)

// Origins of requests (the same as results').
const (
	OriginCLI      = results.OriginCLI
	OriginSchedule = results.OriginSchedule
	OriginTrigger  = results.OriginTrigger
	OriginDemo     = results.OriginDemo
)

// Request is the record of one query, kept in Redis for the retention time.
type Request struct {
	ID         string `json:"id"`
	InstanceID string `json:"instance_id"`
	NodeID     string `json:"node_id,omitempty"`
	AllNodes   bool   `json:"all_nodes,omitempty"`
	CleanCache bool   `json:"clean_cache"`
	Origin     string `json:"origin"`
	// Audit names the scheduled audit that submitted the request, if any.
	Audit       string    `json:"audit,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	State       State     `json:"state"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Leader is the request whose scan this one uses (itself when it scans).
	Leader string `json:"leader,omitempty"`
	// ScanAt is when ScanClients was called: the reference time of the job.
	ScanAt         time.Time `json:"scan_at,omitzero"`
	JobID          string    `json:"job_id,omitempty"`
	JobStatus      string    `json:"job_status,omitempty"`
	JobBegin       time.Time `json:"job_begin,omitzero"`
	JobEnd         time.Time `json:"job_end,omitzero"`
	Polls          int       `json:"polls"`
	CompletionPath string    `json:"completion_path,omitempty"`
	ListTimeRaw    string    `json:"list_time_raw,omitempty"`
	SnapshotID     string    `json:"snapshot_id,omitempty"`
	Count          int       `json:"count,omitempty"`
	Error          string    `json:"error,omitempty"`
	ErrorCode      string    `json:"error_code,omitempty"`
	ErrorClass     string    `json:"error_class,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	Parent         string    `json:"parent,omitempty"`
	Children       []string  `json:"children,omitempty"`
}

// Event is one state change of a request.
type Event struct {
	At     time.Time `json:"at"`
	State  State     `json:"state"`
	Detail string    `json:"detail,omitempty"`
}

// ErrRequestNotFound: no record for that id (never created, or expired).
var ErrRequestNotFound = errors.New("request not found")

// Requests stores request records. Each record is a hash under the hash tag
// {r:<id>}; the per-node scan lock lives under the node's tag {n:<inst>:<node>}
// (shared with package results), so no command spans two Cluster slots.
type Requests struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

// NewRequests returns a store; ttl is how long records are kept (default 7 days).
func NewRequests(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Requests {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if ttl <= 0 {
		ttl = 7 * 24 * time.Hour
	}
	return &Requests{rdb: rdb, prefix: prefix, ttl: ttl, now: time.Now}
}

// DefaultPrefix starts every Redis key this project writes (asynq's own keys
// start with "asynq:").
const DefaultPrefix = "dcsjobs"

func (r *Requests) key(id string) string   { return r.prefix + ":{r:" + id + "}" }
func (r *Requests) evKey(id string) string { return r.key(id) + ":ev" }
func (r *Requests) nodeKey(inst, node string) string {
	return r.prefix + ":{n:" + inst + ":" + node + "}"
}

const maxEvents = 200

func ms(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func fromMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

func b2s(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// fields turns the settable parts of a request into hash fields.
func (q *Request) fields() map[string]string {
	return map[string]string{
		"id": q.ID, "instance_id": q.InstanceID, "node_id": q.NodeID, "all_nodes": b2s(q.AllNodes),
		"clean_cache": b2s(q.CleanCache), "origin": q.Origin, "audit": q.Audit, "requested_at": ms(q.RequestedAt),
		"state": string(q.State), "updated_at": ms(q.UpdatedAt), "leader": q.Leader, "parent": q.Parent,
	}
}

func parseRequest(m map[string]string) *Request {
	polls, _ := strconv.Atoi(m["polls"])
	count, _ := strconv.Atoi(m["count"])
	q := &Request{
		ID: m["id"], InstanceID: m["instance_id"], NodeID: m["node_id"], AllNodes: m["all_nodes"] == "1",
		CleanCache: m["clean_cache"] == "1", Origin: m["origin"], Audit: m["audit"], RequestedAt: fromMS(m["requested_at"]),
		State: State(m["state"]), UpdatedAt: fromMS(m["updated_at"]), Leader: m["leader"],
		ScanAt: fromMS(m["scan_at"]), JobID: m["job_id"], JobStatus: m["job_status"],
		JobBegin: fromMS(m["job_begin"]), JobEnd: fromMS(m["job_end"]), Polls: polls,
		CompletionPath: m["completion_path"], ListTimeRaw: m["list_time_raw"], SnapshotID: m["snapshot_id"],
		Count: count, Error: m["error"], ErrorCode: m["error_code"], ErrorClass: m["error_class"],
		LastError: m["last_error"], Parent: m["parent"],
	}
	if c := m["children"]; c != "" {
		q.Children = strings.Split(c, ",")
	}
	return q
}

// Create stores a new request. It fails if the id exists, unless the stored
// record is the same request (a re-run of the step that created it), in which
// case it reports created=false and no error.
func (r *Requests) Create(ctx context.Context, q *Request) (created bool, err error) {
	now := r.now().UTC()
	if q.RequestedAt.IsZero() {
		q.RequestedAt = now
	}
	if q.State == "" {
		q.State = StateQueued
	}
	q.UpdatedAt = now
	args := []any{ms(now) + " " + string(q.State) + " submitted", r.ttl.Milliseconds()}
	for k, v := range q.fields() {
		args = append(args, k, v)
	}
	n, err := createScript.Run(ctx, r.rdb, []string{r.key(q.ID), r.evKey(q.ID)}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("create request %s: %w", q.ID, err)
	}
	return n == 1, nil
}

var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1`)

// Get reads a request.
func (r *Requests) Get(ctx context.Context, id string) (*Request, error) {
	m, err := r.rdb.HGetAll(ctx, r.key(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("read request %s: %w", id, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrRequestNotFound, id)
	}
	return parseRequest(m), nil
}

// Events returns the state changes of a request, oldest first.
func (r *Requests) Events(ctx context.Context, id string) ([]Event, error) {
	lines, err := r.rdb.LRange(ctx, r.evKey(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	out := make([]Event, 0, len(lines))
	for _, l := range lines {
		parts := strings.SplitN(l, " ", 3)
		if len(parts) < 2 {
			continue
		}
		e := Event{At: fromMS(parts[0]), State: State(parts[1])}
		if len(parts) == 3 {
			e.Detail = parts[2]
		}
		out = append(out, e)
	}
	return out, nil
}

// change is one guarded update of a request record.
type change struct {
	state  State             // new state ("" keeps the current one)
	set    map[string]string // fields to set
	detail string            // event detail
	// minPoll > 0: apply only if the stored polls count is <= minPoll
	// (a poll task n sets polls=n; a stale duplicate of an older poll is refused).
	minPoll int
	// requireNoJob: apply only if no job_id is stored yet.
	requireNoJob bool
	// terminal: the change ends the request; applied at most once.
	terminal bool
}

// Outcomes of apply.
const (
	applied    = 1
	isTerminal = 0  // the request already ended
	missing    = -1 // no record
	stale      = -2 // a guard refused the change
)

var applyScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return -1 end
if st == 'done' or st == 'failed' then return 0 end
local minPoll = tonumber(ARGV[3])
if minPoll > 0 then
  local p = tonumber(redis.call('HGET', KEYS[1], 'polls') or '0') or 0
  if p > minPoll then return -2 end
end
if ARGV[4] == '1' then
  local j = redis.call('HGET', KEYS[1], 'job_id')
  if j and j ~= '' then return -2 end
end
if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
if ARGV[5] == '1' or (ARGV[1] ~= '') then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('LTRIM', KEYS[2], -` + strconv.Itoa(maxEvents) + `, -1)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1`)

// apply performs c atomically on request id and returns one of the outcomes.
func (r *Requests) apply(ctx context.Context, id string, c change) (int, error) {
	now := r.now().UTC()
	set := map[string]string{"updated_at": ms(now)}
	for k, v := range c.set {
		set[k] = v
	}
	event := ""
	if c.state != "" {
		set["state"] = string(c.state)
		event = ms(now) + " " + string(c.state)
		if c.detail != "" {
			event += " " + c.detail
		}
	}
	args := []any{event, r.ttl.Milliseconds(), c.minPoll, b2s(c.requireNoJob), b2s(c.terminal)}
	for k, v := range set {
		args = append(args, k, v)
	}
	n, err := applyScript.Run(ctx, r.rdb, []string{r.key(id), r.evKey(id)}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("update request %s: %w", id, err)
	}
	return n, nil
}

// acquireScript makes the caller the scan leader of a node, or records it as a
// waiter of the current leader. It returns the leader's id.
var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if cur ~= ARGV[1] then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return cur`)

// releaseScript frees the node if id leads it, and returns (and forgets) the
// waiters, so the leader can hand them its outcome.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
local w = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
return w`)

// acquire returns the id of the request that leads the node's scan: id itself
// when the node was free (or id already led it). ttl bounds the lock, so a
// lost leader cannot block the node for longer.
func (r *Requests) acquire(ctx context.Context, inst, node, id string, ttl time.Duration) (string, error) {
	k := r.nodeKey(inst, node)
	return acquireScript.Run(ctx, r.rdb, []string{k + ":inflight", k + ":waiters"}, id, ttl.Milliseconds()).Text()
}

func (r *Requests) release(ctx context.Context, inst, node, id string) ([]string, error) {
	k := r.nodeKey(inst, node)
	return releaseScript.Run(ctx, r.rdb, []string{k + ":inflight", k + ":waiters"}, id).StringSlice()
}

// InFlight returns the request currently scanning a node ("" when none).
func (r *Requests) InFlight(ctx context.Context, inst, node string) (string, error) {
	v, err := r.rdb.Get(ctx, r.nodeKey(inst, node)+":inflight").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}
