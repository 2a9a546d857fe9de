package results

import (
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

func TestCodecFindingsAndAuditRoundTrip(t *testing.T) {
	t.Parallel()
	s := &Snapshot{ID: "s", Request: Request{ID: "s", InstanceID: "i", NodeID: "n", Origin: OriginSchedule, Audit: "orders"},
		FetchedAt: time.Unix(1795860000, 0).UTC(), Count: 1, Clients: []dcsapi.ClientInfo{{ID: "1", Addr: "1.2.3.4:5"}},
		Findings: []Finding{
			{Audit: "orders", Rule: "idle_sessions", Message: "1 session idle longer than 30m (max 0)", Count: 1, Examples: []string{"1.2.3.4:5"}},
			{Audit: "orders", Rule: "new_clients", Message: "no examples", Count: 3, Examples: []string{}},
			{Audit: "orders", Rule: "sessions_near_limit", Message: "nil examples", Count: 9},
		}}
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Request.Audit != "orders" || !reflect.DeepEqual(got.Findings, s.Findings) {
		t.Errorf("round trip: audit %q findings %+v", got.Request.Audit, got.Findings)
	}
	s.Findings = nil
	b, _ = Encode(s)
	if got, _ := Decode(b); got.Findings != nil {
		t.Errorf("nil findings came back as %#v", got.Findings)
	}
}

// Snapshots written by version 1 of the codec (before audits) still decode.
func TestCodecReadsVersion1(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/snapshot-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	if b[len(Magic)] != 1 {
		t.Fatalf("testdata is version %d", b[len(Magic)])
	}
	s, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "v1snap" || len(s.Clients) != 2 || s.Clients[1].Idle != 900 || s.Findings != nil || s.Request.Audit != "" {
		t.Errorf("decoded %+v", s)
	}
	b[len(Magic)] = CodecVersion + 1
	if _, err := Decode(b); err == nil {
		t.Error("a future version decoded")
	}
}

func TestSaveForKeepsTheSnapshotForItsOwnRetention(t *testing.T) {
	t.Parallel()
	st, rdb := newTestStore(t, StoreOptions{Retention: time.Hour})
	ctx := t.Context()
	now := time.Now()
	if err := st.SaveFor(ctx, snapAt("i", "n", "long", now, 3), 720*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, snapAt("i", "n", "short", now.Add(time.Second), 3)); err != nil {
		t.Fatal(err)
	}
	long, _ := rdb.PTTL(ctx, st.snapKey("i", "n", "long")).Result()
	short, _ := rdb.PTTL(ctx, st.snapKey("i", "n", "short")).Result()
	if long < 719*time.Hour || short > time.Hour || short < 59*time.Minute {
		t.Errorf("TTLs: %v and %v", long, short)
	}
	if h, _ := st.History(ctx, "i", "n", 10); len(h) != 2 {
		t.Errorf("history has %d entries", len(h))
	}
}
