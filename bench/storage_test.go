package bench

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/tasks"
	"github.com/dcsjobs/dcsjobs/worker"
)

// storageResult compares what the pipeline stores for a 10,000-session node
// with the JSON of the same snapshot.
type storageResult struct {
	Sessions int `json:"sessions"`
	// BlobBytes is STRLEN of the snapshot key (equal to Meta.SizeBytes);
	// MetaBytes is the JSON Meta stored next to it; RedisBytes is MEMORY
	// USAGE of both keys.
	BlobBytes  int64 `json:"blob_bytes"`
	MetaBytes  int64 `json:"meta_bytes"`
	RedisBytes int64 `json:"redis_bytes"`
	// JSONBytes is json.Marshal of the stored snapshot (as read back);
	// ListJSONBytes is json.Marshal of the bare session list, what the chain
	// stores.
	JSONBytes     int `json:"json_bytes"`
	ListJSONBytes int `json:"list_json_bytes"`
}

func (s storageResult) pct() float64 { return 100 * float64(s.BlobBytes) / float64(s.JSONBytes) }

// measureStorage runs one pipeline request against a 10,000-session node and
// reads back what it stored.
func measureStorage(tb testing.TB, p params) storageResult {
	tb.Helper()
	ctx := context.Background()
	_, simURL := startSim(tb, storageInventory(), p.JobDuration)
	rs := startRedis(tb, p)
	rdb := rs.Client()
	w, err := worker.Start(ctx, workerConfig(p, rs.URL(), simURL), zerolog.Nop(), worker.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = w.Shutdown() }()
	req, err := w.Submitter().Submit(ctx, tasks.SubmitOptions{InstanceID: storageInstance, NodeID: storageNode, Origin: tasks.OriginCLI})
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := w.Requests().Get(ctx, req.ID)
		if err != nil {
			tb.Fatal(err)
		}
		if r.State.Terminal() {
			if r.State != tasks.StateDone {
				tb.Fatalf("10k-session request ended %s: %s", r.State, r.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("10k-session request still %s after a minute", r.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m, err := w.Store().LatestSummary(ctx, storageInstance, storageNode)
	if err != nil {
		tb.Fatal(err)
	}
	snap, err := w.Store().Get(ctx, storageInstance, storageNode, m.ID)
	if err != nil {
		tb.Fatal(err)
	}
	js, err := json.Marshal(snap)
	if err != nil {
		tb.Fatal(err)
	}
	list, err := json.Marshal(&dcsapi.ClientList{Time: dcsapi.FlexTime{Time: snap.DCSTime, Raw: snap.DCSTimeRaw},
		Count: int64(snap.Count), Clients: snap.Clients})
	if err != nil {
		tb.Fatal(err)
	}
	// Key layout: see the package documentation of results.
	tag := "dcsjobs:{n:" + storageInstance + ":" + storageNode + "}"
	snapKey, metaKey := tag+":snap:"+m.ID, tag+":meta:"+m.ID
	res := storageResult{Sessions: len(snap.Clients), BlobBytes: rdb.StrLen(ctx, snapKey).Val(),
		MetaBytes: rdb.StrLen(ctx, metaKey).Val(), JSONBytes: len(js), ListJSONBytes: len(list)}
	res.RedisBytes = rdb.MemoryUsage(ctx, snapKey).Val() + rdb.MemoryUsage(ctx, metaKey).Val()
	if res.BlobBytes != int64(m.SizeBytes) {
		tb.Errorf("snapshot key holds %d bytes, Meta.SizeBytes says %d", res.BlobBytes, m.SizeBytes)
	}
	if res.Sessions != storageSessions {
		tb.Errorf("stored snapshot has %d sessions, want %d", res.Sessions, storageSessions)
	}
	return res
}
