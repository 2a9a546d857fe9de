package results

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testRedis is the shared Redis the tests use; it is not empty, so each test
// works under its own key prefix and deletes its keys.
func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	addr := os.Getenv("RESULTS_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("these tests need Redis at %s (set RESULTS_TEST_REDIS_ADDR): %v", addr, err)
	}
	return rdb
}

func newTestStore(t *testing.T, opts StoreOptions) (*Store, *redis.Client) {
	t.Helper()
	rdb := testRedis(t)
	rnd := make([]byte, 6)
	_, _ = rand.Read(rnd)
	opts.Prefix = "test:" + strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + ":" + hex.EncodeToString(rnd)
	st := NewStore(rdb, opts)
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := rdb.Scan(ctx, 0, opts.Prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	})
	return st, rdb
}

// snapAt is a small snapshot of a node fetched at t.
func snapAt(inst, node, id string, t time.Time, n int) *Snapshot {
	s := genSnapshot(n, uint64(len(id)+n))
	s.ID, s.Request.ID, s.Request.InstanceID, s.Request.NodeID = id, id, inst, node
	s.FetchedAt, s.DCSTime = t, t.Add(-time.Second)
	return s
}

func ids(ms []Meta) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestStoreSaveGet(t *testing.T) {
	t.Parallel()
	st, rdb := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	now := time.Now()
	s := snapAt("inst-a", "node-1", "req-1", now, 200)
	if err := st.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, "inst-a", "node-1", "req-1")
	if err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, s, got)
	latest, err := st.Latest(ctx, "inst-a", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, s, latest)

	m, err := st.LatestSummary(ctx, "inst-a", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := Encode(s)
	want := MetaOf(normalized(s), len(blob))
	// JSON keeps the instant; compare times with Equal.
	if !m.FetchedAt.Equal(want.FetchedAt) || !m.Request.RequestedAt.Equal(want.Request.RequestedAt) {
		t.Errorf("meta times: %v %v", m.FetchedAt, m.Request.RequestedAt)
	}
	m.FetchedAt, m.DCSTime, m.Request.RequestedAt, m.Job.BeginTime, m.Job.EndTime, m.Diff.PreviousTime =
		want.FetchedAt, want.DCSTime, want.Request.RequestedAt, want.Job.BeginTime, want.Job.EndTime, want.Diff.PreviousTime
	if !reflect.DeepEqual(*m, want) {
		t.Errorf("LatestSummary:\n got %+v\nwant %+v", *m, want)
	}
	if m.SizeBytes == 0 || m.Diff.NewCount != s.Diff.NewCount || m.Count != 200 {
		t.Errorf("meta: size %d, new %d, count %d", m.SizeBytes, m.Diff.NewCount, m.Count)
	}

	// Key layout: every key of the node shares one hash tag.
	keys, err := rdb.Keys(ctx, st.opts.Prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	tag := "{n:inst-a:node-1}"
	wantKeys := map[string]bool{
		st.opts.Prefix + ":" + tag + ":snap:req-1": true,
		st.opts.Prefix + ":" + tag + ":meta:req-1": true,
		st.opts.Prefix + ":" + tag + ":hist":       true,
		st.opts.Prefix + ":nodes":                  true,
	}
	if len(keys) != len(wantKeys) {
		t.Errorf("keys %v, want %v", keys, wantKeys)
	}
	for _, k := range keys {
		if !wantKeys[k] {
			t.Errorf("unexpected key %q", k)
		}
	}
}

func TestStoreNotFound(t *testing.T) {
	t.Parallel()
	st, rdb := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	if err := st.Save(ctx, snapAt("i", "n", "a", time.Now(), 3)); err != nil {
		t.Fatal(err)
	}
	// A corrupted blob is an error, not ErrNotFound.
	if err := rdb.Set(ctx, st.snapKey("i", "n", "bad"), "garbage", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{"Get unknown id", func() error { _, err := st.Get(ctx, "i", "n", "nope"); return err }, ErrNotFound},
		{"Get other node", func() error { _, err := st.Get(ctx, "i", "m", "a"); return err }, ErrNotFound},
		{"Latest unknown node", func() error { _, err := st.Latest(ctx, "i", "m"); return err }, ErrNotFound},
		{"LatestSummary unknown node", func() error { _, err := st.LatestSummary(ctx, "j", "n"); return err }, ErrNotFound},
		{"Previous of the only one", func() error { _, err := st.Previous(ctx, "i", "n", "a"); return err }, ErrNotFound},
		{"Get corrupted", func() error { _, err := st.Get(ctx, "i", "n", "bad"); return err }, ErrCorrupt},
		{"bad node id", func() error { _, err := st.Get(ctx, "i", "n:x", "a"); return err }, ErrInvalid},
		{"empty instance", func() error { _, err := st.Latest(ctx, "", "n"); return err }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
	h, err := st.History(ctx, "i", "m", 10)
	if err != nil || len(h) != 0 {
		t.Errorf("History of an unknown node: %v, %v", h, err)
	}
}

func TestStoreSaveRejects(t *testing.T) {
	t.Parallel()
	st, _ := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	for _, tt := range []struct{ name, id, inst, node string }{
		{"no id", "", "i", "n"},
		{"no instance", "a", "", "n"},
		{"no node", "a", "i", ""},
		{"colon", "a", "i:j", "n"},
		{"slash", "a", "i", "n/m"},
		{"brace", "a", "i}", "n"},
		{"space", "a", "i", "n m"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := snapAt(tt.inst, tt.node, tt.id, time.Now(), 1)
			if err := st.Save(ctx, s); !errors.Is(err, ErrInvalid) {
				t.Errorf("Save: %v, want ErrInvalid", err)
			}
		})
	}
	if err := st.Save(ctx, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Save(nil): %v", err)
	}
}

func TestStoreIdempotentSave(t *testing.T) {
	t.Parallel()
	st, rdb := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	s := snapAt("i", "n", "same", time.Now(), 10)
	for range 2 {
		if err := st.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdb.ZCard(ctx, st.histKey("i", "n")).Val(); n != 1 {
		t.Errorf("history has %d entries", n)
	}
	if n := rdb.ZCard(ctx, st.nodesKey()).Val(); n != 1 {
		t.Errorf("node index has %d entries", n)
	}
	h, err := st.History(ctx, "i", "n", 0)
	if err != nil || !reflect.DeepEqual(ids(h), []string{"same"}) {
		t.Errorf("History: %v, %v", ids(h), err)
	}
	if keys := rdb.Keys(ctx, st.opts.Prefix+":*").Val(); len(keys) != 4 {
		t.Errorf("keys: %v", keys)
	}
}

func TestStoreHistoryPrevious(t *testing.T) {
	t.Parallel()
	st, rdb := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour)
	// Saved out of order; ids do not sort like times.
	order := []int{3, 1, 4, 0, 2}
	for _, i := range order {
		if err := st.Save(ctx, snapAt("i", "n", fmt.Sprintf("z%d", 9-i), t0.Add(time.Duration(i)*time.Minute), 5)); err != nil {
			t.Fatal(err)
		}
	}
	// Another node of the same instance must not interfere.
	if err := st.Save(ctx, snapAt("i", "other", "x", t0.Add(time.Hour), 5)); err != nil {
		t.Fatal(err)
	}
	h, err := st.History(ctx, "i", "n", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"z5", "z6", "z7", "z8", "z9"}; !reflect.DeepEqual(ids(h), want) {
		t.Errorf("History: %v, want %v", ids(h), want)
	}
	h, _ = st.History(ctx, "i", "n", 2)
	if want := []string{"z5", "z6"}; !reflect.DeepEqual(ids(h), want) {
		t.Errorf("History(2): %v, want %v", ids(h), want)
	}

	prevID := func(id string) string {
		t.Helper()
		p, err := st.Previous(ctx, "i", "n", id)
		if errors.Is(err, ErrNotFound) {
			return "none"
		}
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	for _, tt := range []struct{ id, want string }{
		{"z7", "z8"}, {"z5", "z6"}, {"z9", "none"},
		{"unsaved", "z5"}, // about to be saved: the latest
	} {
		if got := prevID(tt.id); got != tt.want {
			t.Errorf("Previous(%s) = %s, want %s", tt.id, got, tt.want)
		}
	}
	// A re-run saves z7 again: its previous is unchanged.
	if err := st.Save(ctx, snapAt("i", "n", "z7", t0.Add(2*time.Minute), 5)); err != nil {
		t.Fatal(err)
	}
	if got := prevID("z7"); got != "z8" {
		t.Errorf("Previous(z7) after a re-run = %s", got)
	}
	// z8 expires: Previous skips it and the history forgets it.
	rdb.Del(ctx, st.snapKey("i", "n", "z8"), st.metaKey("i", "n", "z8"))
	if got := prevID("z7"); got != "z9" {
		t.Errorf("Previous(z7) with z8 expired = %s", got)
	}
	if err := rdb.ZScore(ctx, st.histKey("i", "n"), "z8").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("expired z8 still in history: %v", err)
	}
	h, _ = st.History(ctx, "i", "n", 0)
	if want := []string{"z5", "z6", "z7", "z9"}; !reflect.DeepEqual(ids(h), want) {
		t.Errorf("History after expiry: %v, want %v", ids(h), want)
	}
	// The latest expires: Latest and LatestSummary fall back to the next.
	rdb.Del(ctx, st.snapKey("i", "n", "z5"), st.metaKey("i", "n", "z5"))
	if l, err := st.Latest(ctx, "i", "n"); err != nil || l.ID != "z6" {
		t.Errorf("Latest with z5 expired: %v", err)
	}
	rdb.Del(ctx, st.metaKey("i", "n", "z6"))
	if m, err := st.LatestSummary(ctx, "i", "n"); err != nil || m.ID != "z7" {
		t.Errorf("LatestSummary with z6's meta expired: %+v, %v", m, err)
	}
}

func TestStoreHistoryMax(t *testing.T) {
	t.Parallel()
	st, rdb := newTestStore(t, StoreOptions{HistoryMax: 3})
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour)
	for i := range 6 {
		if err := st.Save(ctx, snapAt("i", "n", fmt.Sprintf("s%d", i), t0.Add(time.Duration(i)*time.Second), 2)); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdb.ZCard(ctx, st.histKey("i", "n")).Val(); n != 3 {
		t.Errorf("history has %d entries, want 3", n)
	}
	h, err := st.History(ctx, "i", "n", 10)
	if want := []string{"s5", "s4", "s3"}; err != nil || !reflect.DeepEqual(ids(h), want) {
		t.Errorf("History: %v (%v), want %v", ids(h), err, want)
	}
	// A late save of an old snapshot does not push out newer ones.
	if err := st.Save(ctx, snapAt("i", "n", "old", t0.Add(-time.Minute), 2)); err != nil {
		t.Fatal(err)
	}
	h, _ = st.History(ctx, "i", "n", 10)
	if want := []string{"s5", "s4", "s3"}; !reflect.DeepEqual(ids(h), want) {
		t.Errorf("History after a late save: %v, want %v", ids(h), want)
	}
}

func TestStoreRetention(t *testing.T) {
	t.Parallel()
	st, rdb := newTestStore(t, StoreOptions{Retention: 2 * time.Second})
	ctx := context.Background()
	now := time.Now()
	if err := st.Save(ctx, snapAt("i", "n", "a", now, 3)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{st.snapKey("i", "n", "a"), st.metaKey("i", "n", "a"), st.histKey("i", "n"), st.nodesKey()} {
		ttl := rdb.PTTL(ctx, k).Val()
		if ttl <= 0 || ttl > 2*time.Second {
			t.Errorf("PTTL %s = %v, want (0, 2s]", k, ttl)
		}
	}
	// A snapshot older than Retention does not enter the history.
	if err := st.Save(ctx, snapAt("i", "n", "stale", now.Add(-3*time.Second), 3)); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZScore(ctx, st.histKey("i", "n"), "stale").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("stale snapshot in history: %v", err)
	}
	if nodes, err := st.Nodes(ctx); err != nil || len(nodes) != 1 {
		t.Fatalf("Nodes before expiry: %v, %v", nodes, err)
	}
	time.Sleep(2100 * time.Millisecond)
	if _, err := st.Get(ctx, "i", "n", "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after retention: %v", err)
	}
	if _, err := st.Latest(ctx, "i", "n"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Latest after retention: %v", err)
	}
	if nodes, err := st.Nodes(ctx); err != nil || len(nodes) != 0 {
		t.Errorf("Nodes after retention: %v, %v", nodes, err)
	}
}

func TestStoreNodes(t *testing.T) {
	t.Parallel()
	st, rdb := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	saves := []struct {
		inst, node, id string
		at             time.Duration
	}{
		{"inst-b", "n1", "b1-old", 0},
		{"inst-b", "n1", "b1-new", 2 * time.Minute},
		{"inst-a", "n2", "a2", time.Minute},
		{"inst-a", "n1", "a1-new", 3 * time.Minute},
		{"inst-a", "n1", "a1-late", time.Second}, // saved last but older
	}
	for _, s := range saves {
		if err := st.Save(ctx, snapAt(s.inst, s.node, s.id, t0.Add(s.at), 2)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []NodeRef{
		{"inst-a", "n1", "a1-new", t0.Add(3 * time.Minute).UTC()},
		{"inst-a", "n2", "a2", t0.Add(time.Minute).UTC()},
		{"inst-b", "n1", "b1-new", t0.Add(2 * time.Minute).UTC()},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Nodes:\n got %v\nwant %v", got, want)
	}
	// The latest of a node expires: Nodes reports the one before.
	rdb.Del(ctx, st.snapKey("inst-b", "n1", "b1-new"), st.metaKey("inst-b", "n1", "b1-new"))
	// Every snapshot of another node expires: Nodes drops it.
	rdb.Del(ctx, st.snapKey("inst-a", "n2", "a2"), st.metaKey("inst-a", "n2", "a2"))
	got, err = st.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = []NodeRef{want[0], {"inst-b", "n1", "b1-old", t0.UTC()}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Nodes after expiry:\n got %v\nwant %v", got, want)
	}
	if err := rdb.ZScore(ctx, st.nodesKey(), "inst-a/n2").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("expired node still indexed: %v", err)
	}
}
