package results

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned when a snapshot does not exist or has expired.
var ErrNotFound = errors.New("snapshot not found")

// Defaults of StoreOptions.
const (
	DefaultPrefix     = "dcsjobs"
	DefaultRetention  = 7 * 24 * time.Hour
	DefaultHistoryMax = 100
)

// StoreOptions tune a Store.
type StoreOptions struct {
	// Prefix starts every key. Empty means DefaultPrefix ("dcsjobs"). It must
	// not contain '{' or '}', which would change the cluster hash slot.
	Prefix string
	// Retention is the TTL of snapshot keys and the age after which history
	// entries are dropped (measured from Snapshot.Time). Zero means
	// DefaultRetention (7 days).
	Retention time.Duration
	// HistoryMax is how many snapshots a node's history keeps; older ones are
	// dropped from the history (their keys expire with Retention). Zero means
	// DefaultHistoryMax (100).
	HistoryMax int
}

// Store keeps snapshots in Redis (or a Redis Cluster). The key layout is
// described in the package documentation. A Store is safe for concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	opts StoreOptions
	now  func() time.Time
}

// NewStore returns a Store on rdb. It panics if opts.Prefix contains a brace,
// a programming error that would break cluster slot locality.
func NewStore(rdb redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		panic(fmt.Sprintf("results: store prefix %q contains a brace", opts.Prefix))
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.HistoryMax <= 0 {
		opts.HistoryMax = DefaultHistoryMax
	}
	return &Store{rdb: rdb, opts: opts, now: time.Now}
}

// DiffCounts is a Diff without its lists.
type DiffCounts struct {
	PreviousID   string    `json:"previous_id"`
	PreviousTime time.Time `json:"previous_time"`
	NewCount     int       `json:"new_count"`
	GoneCount    int       `json:"gone_count"`
	Unchanged    int       `json:"unchanged"`
}

// Meta is a snapshot without its sessions: what lists and dashboards need.
type Meta struct {
	ID         string    `json:"id"`
	InstanceID string    `json:"instance_id"`
	NodeID     string    `json:"node_id"`
	Request    Request   `json:"request"`
	Job        Job       `json:"job"`
	DCSTime    time.Time `json:"dcs_time"`
	DCSTimeRaw string    `json:"dcs_time_raw"`
	FetchedAt  time.Time `json:"fetched_at"`
	Count      int       `json:"count"`
	Summary    Summary   `json:"summary"`
	// Diff is nil for the first snapshot of a node.
	Diff *DiffCounts `json:"diff,omitempty"`
	// SizeBytes is the size of the encoded snapshot.
	SizeBytes int `json:"size_bytes"`
	// Findings are the violated audit rules.
	Findings []Finding `json:"findings,omitempty"`
}

// MetaOf is the Meta of a snapshot encoded in size bytes.
func MetaOf(s *Snapshot, size int) Meta {
	m := Meta{ID: s.ID, InstanceID: s.Request.InstanceID, NodeID: s.Request.NodeID, Request: s.Request, Job: s.Job,
		DCSTime: s.DCSTime, DCSTimeRaw: s.DCSTimeRaw, FetchedAt: s.FetchedAt, Count: s.Count, Summary: s.Summary, SizeBytes: size,
		Findings: s.Findings}
	if d := s.Diff; d != nil {
		m.Diff = &DiffCounts{PreviousID: d.PreviousID, PreviousTime: d.PreviousTime, NewCount: d.NewCount,
			GoneCount: d.GoneCount, Unchanged: d.Unchanged}
	}
	return m
}

// NodeRef is a node that has snapshots, and its latest one.
type NodeRef struct {
	InstanceID string    `json:"instance_id"`
	NodeID     string    `json:"node_id"`
	LatestID   string    `json:"latest_id"`
	LatestTime time.Time `json:"latest_time"`
}

// ---- keys ----

func (s *Store) nodeTag(inst, node string) string {
	return s.opts.Prefix + ":{n:" + inst + ":" + node + "}"
}
func (s *Store) snapKey(inst, node, id string) string { return s.nodeTag(inst, node) + ":snap:" + id }
func (s *Store) metaKey(inst, node, id string) string { return s.nodeTag(inst, node) + ":meta:" + id }
func (s *Store) histKey(inst, node string) string     { return s.nodeTag(inst, node) + ":hist" }
func (s *Store) nodesKey() string                     { return s.opts.Prefix + ":nodes" }

func nodeMember(inst, node string) string { return inst + "/" + node }

func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

func checkNode(inst, node string) error {
	if err := checkKeyPart("instance_id", inst); err != nil {
		return err
	}
	return checkKeyPart("node_id", node)
}

// ---- writes ----

// Save stores a snapshot: its encoding and its Meta (both with TTL
// Retention), its entry in the node's history, trimmed to HistoryMax entries
// and Retention age, and the node in the global node index. The node's keys
// are written in one MULTI; the index, in another hash slot, after it by
// commands on its key alone. Saving the same snapshot id again replaces it.
func (s *Store) Save(ctx context.Context, snap *Snapshot) error {
	return s.SaveFor(ctx, snap, s.opts.Retention)
}

// SaveFor is Save with the snapshot kept for retention instead of
// StoreOptions.Retention (an audit's own retention); the node's history and
// the node index are kept at least as long as StoreOptions.Retention.
func (s *Store) SaveFor(ctx context.Context, snap *Snapshot, retention time.Duration) error {
	if retention <= 0 {
		retention = s.opts.Retention
	}
	keep := max(retention, s.opts.Retention)
	if err := snap.Validate(); err != nil {
		return err
	}
	blob, err := Encode(snap)
	if err != nil {
		return err
	}
	meta, err := json.Marshal(MetaOf(snap, len(blob)))
	if err != nil {
		return fmt.Errorf("results: meta of snapshot %q: %w", snap.ID, err)
	}
	inst, node := snap.Request.InstanceID, snap.Request.NodeID
	score := ms(snap.Time())
	cutoff := ms(s.now().Add(-keep))
	hist := s.histKey(inst, node)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.snapKey(inst, node, snap.ID), blob, retention)
		p.Set(ctx, s.metaKey(inst, node, snap.ID), meta, retention)
		p.ZAdd(ctx, hist, redis.Z{Score: score, Member: snap.ID})
		p.ZRemRangeByScore(ctx, hist, "-inf", "("+strconv.FormatFloat(cutoff, 'f', -1, 64))
		p.ZRemRangeByRank(ctx, hist, 0, int64(-s.opts.HistoryMax-1))
		p.PExpire(ctx, hist, keep)
		return nil
	})
	if err != nil {
		return fmt.Errorf("results: save snapshot %q of %s/%s: %w", snap.ID, inst, node, err)
	}
	nodes := s.nodesKey()
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		// GT keeps the newest time when an older snapshot is saved late.
		p.ZAddGT(ctx, nodes, redis.Z{Score: score, Member: nodeMember(inst, node)})
		// Nothing in the index outlives the retention without a new Save.
		p.PExpire(ctx, nodes, keep)
		return nil
	}); err != nil {
		return fmt.Errorf("results: index node %s/%s: %w", inst, node, err)
	}
	return nil
}

// ---- reads ----

// Get returns one snapshot, or ErrNotFound.
func (s *Store) Get(ctx context.Context, instanceID, nodeID, snapshotID string) (*Snapshot, error) {
	if err := checkNode(instanceID, nodeID); err != nil {
		return nil, err
	}
	b, err := s.rdb.Get(ctx, s.snapKey(instanceID, nodeID, snapshotID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("results: snapshot %q of %s/%s: %w", snapshotID, instanceID, nodeID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("results: get snapshot %q of %s/%s: %w", snapshotID, instanceID, nodeID, err)
	}
	snap, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("results: snapshot %q of %s/%s: %w", snapshotID, instanceID, nodeID, err)
	}
	return snap, nil
}

// Latest returns the newest live snapshot of a node, or ErrNotFound.
func (s *Store) Latest(ctx context.Context, instanceID, nodeID string) (*Snapshot, error) {
	return s.firstSnapshot(ctx, instanceID, nodeID, 0, "")
}

// Previous returns the newest snapshot of the node that is older than
// snapshotID, never snapshotID itself, or ErrNotFound. When snapshotID is in
// the history (a re-run) "older" is by history order; when it is not (it is
// about to be saved) Previous is the newest snapshot other than snapshotID.
func (s *Store) Previous(ctx context.Context, instanceID, nodeID, snapshotID string) (*Snapshot, error) {
	if err := checkNode(instanceID, nodeID); err != nil {
		return nil, err
	}
	start := int64(0)
	rank, err := s.rdb.ZRevRank(ctx, s.histKey(instanceID, nodeID), snapshotID).Result()
	switch {
	case err == nil:
		start = rank + 1
	case !errors.Is(err, redis.Nil):
		return nil, fmt.Errorf("results: history of %s/%s: %w", instanceID, nodeID, err)
	}
	return s.firstSnapshot(ctx, instanceID, nodeID, start, snapshotID)
}

// LatestSummary returns the Meta of the newest live snapshot of a node
// without reading its sessions, or ErrNotFound.
func (s *Store) LatestSummary(ctx context.Context, instanceID, nodeID string) (*Meta, error) {
	metas, err := s.metas(ctx, instanceID, nodeID, 0, 1)
	if err != nil {
		return nil, err
	}
	if len(metas) == 0 {
		return nil, fmt.Errorf("results: latest snapshot of %s/%s: %w", instanceID, nodeID, ErrNotFound)
	}
	return &metas[0], nil
}

// History returns the Meta of up to limit live snapshots of a node, newest
// first; limit <= 0 means all of them (at most HistoryMax). A node without
// snapshots has an empty history, not an error.
func (s *Store) History(ctx context.Context, instanceID, nodeID string, limit int) ([]Meta, error) {
	if limit <= 0 {
		limit = s.opts.HistoryMax
	}
	return s.metas(ctx, instanceID, nodeID, 0, limit)
}

// histPage is the most history entries a read asks for at a time.
const histPage = 64

// pageIDs reads history ids from rank start, newest first.
func (s *Store) pageIDs(ctx context.Context, inst, node string, start, count int64) ([]string, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.histKey(inst, node), start, start+count-1).Result()
	if err != nil {
		return nil, fmt.Errorf("results: history of %s/%s: %w", inst, node, err)
	}
	return ids, nil
}

// prune drops history entries whose keys have expired.
func (s *Store) prune(ctx context.Context, inst, node string, dead []string) {
	if len(dead) == 0 {
		return
	}
	members := make([]any, len(dead))
	for i, id := range dead {
		members[i] = id
	}
	// Best effort: a failure only leaves entries that the next read skips again.
	_ = s.rdb.ZRem(ctx, s.histKey(inst, node), members...).Err()
}

// metas walks the history from rank start and returns up to limit live Metas.
func (s *Store) metas(ctx context.Context, inst, node string, start int64, limit int) ([]Meta, error) {
	if err := checkNode(inst, node); err != nil {
		return nil, err
	}
	var out []Meta
	var dead []string
	// Dead entries are pruned after the walk so that ranks stay put during it.
	defer func() { s.prune(ctx, inst, node, dead) }()
	for len(out) < limit {
		// Ask for what is missing: Metas carry summaries of a few KB each.
		ids, err := s.pageIDs(ctx, inst, node, start, int64(min(limit-len(out), histPage)))
		if err != nil || len(ids) == 0 {
			return out, err
		}
		start += int64(len(ids))
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = s.metaKey(inst, node, id)
		}
		vals, err := s.rdb.MGet(ctx, keys...).Result() // one node's keys: one slot
		if err != nil {
			return out, fmt.Errorf("results: metas of %s/%s: %w", inst, node, err)
		}
		for i, v := range vals {
			str, ok := v.(string)
			if !ok {
				dead = append(dead, ids[i])
				continue
			}
			if len(out) == limit {
				continue
			}
			var m Meta
			if err := json.Unmarshal([]byte(str), &m); err != nil {
				return out, fmt.Errorf("results: meta of snapshot %q of %s/%s: %w", ids[i], inst, node, err)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// firstSnapshot returns the first live snapshot from history rank start,
// skipping the id skip.
func (s *Store) firstSnapshot(ctx context.Context, inst, node string, start int64, skip string) (*Snapshot, error) {
	if err := checkNode(inst, node); err != nil {
		return nil, err
	}
	var dead []string
	defer func() { s.prune(ctx, inst, node, dead) }()
	for {
		ids, err := s.pageIDs(ctx, inst, node, start, 4)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("results: snapshot of %s/%s: %w", inst, node, ErrNotFound)
		}
		start += int64(len(ids))
		for _, id := range ids {
			if id == skip {
				continue
			}
			snap, err := s.Get(ctx, inst, node, id)
			if errors.Is(err, ErrNotFound) {
				dead = append(dead, id)
				continue
			}
			if err != nil {
				return nil, err
			}
			return snap, nil
		}
	}
}

// Nodes lists every node with a live snapshot, with its latest one, sorted by
// instance then node. Nodes whose snapshots all expired are dropped from the
// index. It reads the history heads of all nodes in one pipeline (split by
// slot on a cluster) and checks they are live in another.
func (s *Store) Nodes(ctx context.Context) ([]NodeRef, error) {
	nodes := s.nodesKey()
	cutoff := ms(s.now().Add(-s.opts.Retention))
	if err := s.rdb.ZRemRangeByScore(ctx, nodes, "-inf", "("+strconv.FormatFloat(cutoff, 'f', -1, 64)).Err(); err != nil {
		return nil, fmt.Errorf("results: node index: %w", err)
	}
	members, err := s.rdb.ZRange(ctx, nodes, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("results: node index: %w", err)
	}
	var refs []NodeRef
	var gone []any
	for _, m := range members {
		inst, node, ok := strings.Cut(m, "/")
		if !ok || checkNode(inst, node) != nil {
			gone = append(gone, m)
			continue
		}
		refs = append(refs, NodeRef{InstanceID: inst, NodeID: node})
	}
	heads := make([]*redis.ZSliceCmd, len(refs))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			heads[i] = p.ZRevRangeWithScores(ctx, s.histKey(r.InstanceID, r.NodeID), 0, 0)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("results: node histories: %w", err)
	}
	live := make([]*redis.IntCmd, len(refs))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			if z := heads[i].Val(); len(z) == 1 {
				id, _ := z[0].Member.(string)
				refs[i].LatestID = id
				refs[i].LatestTime = time.UnixMilli(int64(z[0].Score)).UTC()
				live[i] = p.Exists(ctx, s.metaKey(r.InstanceID, r.NodeID, id))
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("results: node histories: %w", err)
	}
	out := refs[:0]
	for i, r := range refs {
		if live[i] == nil || live[i].Val() == 0 {
			// The head expired (or the history did): walk the history.
			metas, err := s.metas(ctx, r.InstanceID, r.NodeID, 0, 1)
			if err != nil {
				return nil, err
			}
			if len(metas) == 0 {
				gone = append(gone, nodeMember(r.InstanceID, r.NodeID))
				continue
			}
			r.LatestID = metas[0].ID
			r.LatestTime = (&Snapshot{FetchedAt: metas[0].FetchedAt, DCSTime: metas[0].DCSTime, Request: metas[0].Request}).Time()
			r.LatestTime = time.UnixMilli(r.LatestTime.UnixMilli()).UTC()
		}
		out = append(out, r)
	}
	if len(gone) > 0 {
		// Best effort, as in prune. A node saved again meanwhile is re-added
		// by its Save (a race that can hide it until then).
		_ = s.rdb.ZRem(ctx, nodes, gone...).Err()
	}
	slices.SortFunc(out, func(a, b NodeRef) int {
		return cmp.Or(strings.Compare(a.InstanceID, b.InstanceID), strings.Compare(a.NodeID, b.NodeID))
	})
	return out, nil
}
