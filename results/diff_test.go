package results

import (
	"reflect"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

func ref(id, addr string) ClientRef {
	return ClientRef{ID: id, Addr: addr, Name: "n" + id, Cmd: "get", User: "default", Age: 5, Idle: 1}
}

func refClient(id, addr string) dcsapi.ClientInfo {
	r := ref(id, addr)
	return dcsapi.ClientInfo{ID: r.ID, Addr: r.Addr, Name: r.Name, Cmd: r.Cmd, User: r.User, Age: r.Age, Idle: r.Idle, DB: "0"}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	a := refClient("10", "10.0.0.1:1000")
	b := refClient("11", "10.0.0.2:1000")
	c := refClient("12", "10.0.0.1:1001")
	d := refClient("9", "10.0.0.1:1001")
	bMoved := refClient("11", "10.0.0.9:1000") // same id after a restart, another client
	aChanged := a
	aChanged.Idle, aChanged.Cmd = 999, "set"
	tests := []struct {
		name      string
		prev, cur []dcsapi.ClientInfo
		max       int
		want      Diff
	}{
		{"both empty", nil, nil, 0, Diff{}},
		{"first list", nil, []dcsapi.ClientInfo{b, a}, 0, Diff{NewCount: 2, New: []ClientRef{ref("10", "10.0.0.1:1000"), ref("11", "10.0.0.2:1000")}}},
		{"all gone", []dcsapi.ClientInfo{a, b}, nil, 0, Diff{GoneCount: 2, Gone: []ClientRef{ref("10", "10.0.0.1:1000"), ref("11", "10.0.0.2:1000")}}},
		{"unchanged, other fields ignored", []dcsapi.ClientInfo{a, b}, []dcsapi.ClientInfo{b, aChanged}, 0, Diff{Unchanged: 2}},
		{"new and gone", []dcsapi.ClientInfo{a, b}, []dcsapi.ClientInfo{a, c}, 0,
			Diff{NewCount: 1, GoneCount: 1, Unchanged: 1, New: []ClientRef{ref("12", "10.0.0.1:1001")}, Gone: []ClientRef{ref("11", "10.0.0.2:1000")}}},
		{"same id, other addr", []dcsapi.ClientInfo{b}, []dcsapi.ClientInfo{bMoved}, 0,
			Diff{NewCount: 1, GoneCount: 1, New: []ClientRef{ref("11", "10.0.0.9:1000")}, Gone: []ClientRef{ref("11", "10.0.0.2:1000")}}},
		{"sorted by addr then numeric id, capped", nil, []dcsapi.ClientInfo{c, b, a, d}, 3,
			Diff{NewCount: 4, New: []ClientRef{ref("10", "10.0.0.1:1000"), ref("9", "10.0.0.1:1001"), ref("12", "10.0.0.1:1001")}}},
		{"uncapped", nil, []dcsapi.ClientInfo{c, b}, -1, Diff{NewCount: 2, New: []ClientRef{ref("12", "10.0.0.1:1001"), ref("11", "10.0.0.2:1000")}}},
		{"duplicates count once", []dcsapi.ClientInfo{b, b}, []dcsapi.ClientInfo{a, a}, 0,
			Diff{NewCount: 1, GoneCount: 1, New: []ClientRef{ref("10", "10.0.0.1:1000")}, Gone: []ClientRef{ref("11", "10.0.0.2:1000")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Compare(tt.prev, tt.cur, tt.max)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Compare:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCompareLarge(t *testing.T) {
	t.Parallel()
	prev := genClients(50000, 21)
	cur := churn(prev, 60, 21)
	start := time.Now()
	d := Compare(prev, cur, 0)
	elapsed := time.Since(start)
	t.Logf("50,000 vs 50,000 in %v: %d new, %d gone, %d unchanged", elapsed, d.NewCount, d.GoneCount, d.Unchanged)
	if d.NewCount == 0 || d.NewCount != d.GoneCount || d.Unchanged+d.NewCount != len(cur) {
		t.Errorf("counts: %d new, %d gone, %d unchanged of %d", d.NewCount, d.GoneCount, d.Unchanged, len(cur))
	}
	if len(d.New) != min(d.NewCount, DefaultMaxList) || len(d.Gone) != min(d.GoneCount, DefaultMaxList) {
		t.Errorf("lists: %d new, %d gone", len(d.New), len(d.Gone))
	}
	// A generous bound (race detector, loaded machine); it takes ~20ms.
	if elapsed > 5*time.Second {
		t.Errorf("Compare of 50,000 took %v", elapsed)
	}
	if d := Compare(prev, prev, 0); d.Unchanged != len(prev) || d.NewCount+d.GoneCount != 0 {
		t.Errorf("self diff: %+v", d)
	}
}

func BenchmarkCompare50k(b *testing.B) {
	prev := genClients(50000, 21)
	cur := churn(prev, 60, 21)
	b.ReportAllocs()
	for b.Loop() {
		Compare(prev, cur, 0)
	}
}
