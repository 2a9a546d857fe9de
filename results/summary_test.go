package results

import (
	"reflect"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct{ addr, want string }{
		{"10.0.0.1:5000", "10.0.0.1"},
		{"10.0.0.1", "10.0.0.1"},
		{"[::1]:6379", "::1"},
		{"[fe80::1%eth0]:6379", "fe80::1%eth0"},
		{"::1", "::1"},
		{"fd00:12::7", "fd00:12::7"},
		{"::ffff:10.0.0.1", "::ffff:10.0.0.1"},
		{"host.example:80", "host.example"},
		{"[::1", "[::1"},
		{"", ""},
		{"/tmp/redis.sock:0", "/tmp/redis.sock"},
		{"a:b:c", "a:b:c"},
	}
	for _, tt := range tests {
		if got := ClientIP(tt.addr); got != tt.want {
			t.Errorf("ClientIP(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func cl(id, addr, user, cmd, db string, age, idle int64) dcsapi.ClientInfo {
	return dcsapi.ClientInfo{ID: id, Addr: addr, User: user, Cmd: cmd, DB: db, Age: age, Idle: idle, Name: "n" + id}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	list := []dcsapi.ClientInfo{
		cl("1", "10.0.0.1:1000", "default", "get", "0", 100, 600),
		cl("2", "10.0.0.1:1001", "default", "get", "0", 50, 601),
		cl("3", "10.0.0.2:1000", "app", "set", "0", 500, 0),
		cl("4", "[::1]:6379", "", "", "1", 500, 7200),
		cl("5", "::1", "default", "ping", "0", 10, 599),
		cl("6", "10.0.0.3", "app", "get", "", 1, 1),
	}
	tests := []struct {
		name string
		in   []dcsapi.ClientInfo
		opts SummaryOptions
		want Summary
	}{
		{
			name: "empty",
			in:   nil,
			want: Summary{IdleThreshold: 600},
		},
		{
			name: "defaults",
			in:   list,
			want: Summary{
				Total: 6, DistinctClientIPs: 4,
				ByClientIP: Breakdown{Keys: 4, Top: []Count{{"10.0.0.1", 2}, {"::1", 2}, {"10.0.0.2", 1}, {"10.0.0.3", 1}}},
				ByDB:       Breakdown{Keys: 3, Top: []Count{{"0", 4}, {"", 1}, {"1", 1}}},
				ByUser:     Breakdown{Keys: 3, Top: []Count{{"default", 3}, {"app", 2}, {"", 1}}},
				ByCmd:      Breakdown{Keys: 4, Top: []Count{{"get", 3}, {"", 1}, {"ping", 1}, {"set", 1}}},
				// idle > 600: 601 and 7200, not 600 itself.
				IdleThreshold: 600, IdleOver: 2,
				// Age 500 twice: the smaller addr wins.
				OldestConnection: Connection{ID: "3", Addr: "10.0.0.2:1000", Name: "n3", User: "app", Age: 500},
				MaxIdle:          7200,
			},
		},
		{
			name: "top 1, threshold 599.9s counts 600",
			in:   list,
			opts: SummaryOptions{TopN: 1, IdleThreshold: 599*time.Second + 900*time.Millisecond},
			want: Summary{
				Total: 6, DistinctClientIPs: 4,
				ByClientIP:       Breakdown{Keys: 4, Top: []Count{{"10.0.0.1", 2}}, OthersKeys: 3, OthersSessions: 4},
				ByDB:             Breakdown{Keys: 3, Top: []Count{{"0", 4}}, OthersKeys: 2, OthersSessions: 2},
				ByUser:           Breakdown{Keys: 3, Top: []Count{{"default", 3}}, OthersKeys: 2, OthersSessions: 3},
				ByCmd:            Breakdown{Keys: 4, Top: []Count{{"get", 3}}, OthersKeys: 3, OthersSessions: 3},
				IdleThreshold:    599,
				IdleOver:         3,
				OldestConnection: Connection{ID: "3", Addr: "10.0.0.2:1000", Name: "n3", User: "app", Age: 500},
				MaxIdle:          7200,
			},
		},
		{
			name: "uncapped",
			in:   list[:2],
			opts: SummaryOptions{TopN: -1, IdleThreshold: time.Nanosecond},
			want: Summary{
				Total: 2, DistinctClientIPs: 1,
				ByClientIP:       Breakdown{Keys: 1, Top: []Count{{"10.0.0.1", 2}}},
				ByDB:             Breakdown{Keys: 1, Top: []Count{{"0", 2}}},
				ByUser:           Breakdown{Keys: 1, Top: []Count{{"default", 2}}},
				ByCmd:            Breakdown{Keys: 1, Top: []Count{{"get", 2}}},
				IdleThreshold:    0,
				IdleOver:         2,
				OldestConnection: Connection{ID: "1", Addr: "10.0.0.1:1000", Name: "n1", User: "default", Age: 100},
				MaxIdle:          601,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Summarize(tt.in, tt.opts)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Summarize:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// With the default cap, each breakdown of a large list adds up to Total.
func TestSummarizeTotalsAddUp(t *testing.T) {
	t.Parallel()
	cs := genClients(20000, 11)
	// Make more than 100 distinct IPs.
	for i := range cs[:500] {
		cs[i].Addr = "10.99." + string(rune('0'+i%10)) + "." + itoa(i) + ":1234"
	}
	s := Summarize(cs, SummaryOptions{})
	if s.ByClientIP.OthersKeys == 0 || len(s.ByClientIP.Top) != DefaultTopN {
		t.Fatalf("want a capped IP breakdown, got %d top and %d others", len(s.ByClientIP.Top), s.ByClientIP.OthersKeys)
	}
	for name, b := range map[string]Breakdown{"ip": s.ByClientIP, "db": s.ByDB, "user": s.ByUser, "cmd": s.ByCmd} {
		sum := b.OthersSessions
		for i, c := range b.Top {
			sum += c.Sessions
			if i > 0 && (c.Sessions > b.Top[i-1].Sessions || (c.Sessions == b.Top[i-1].Sessions && c.Key < b.Top[i-1].Key)) {
				t.Errorf("%s: not sorted at %d: %v after %v", name, i, c, b.Top[i-1])
			}
		}
		if sum != s.Total || len(b.Top)+b.OthersKeys != b.Keys {
			t.Errorf("%s: sessions %d of %d, keys %d+%d of %d", name, sum, s.Total, len(b.Top), b.OthersKeys, b.Keys)
		}
	}
	if s.DistinctClientIPs != s.ByClientIP.Keys {
		t.Errorf("DistinctClientIPs %d, ByClientIP.Keys %d", s.DistinctClientIPs, s.ByClientIP.Keys)
	}
}

func itoa(i int) string {
	return string([]byte{byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)})
}

func TestDisplayKey(t *testing.T) {
	t.Parallel()
	if got := (Count{}).DisplayKey(); got != EmptyKeyLabel {
		t.Errorf("empty key shows as %q", got)
	}
	if got := (Count{Key: "get"}).DisplayKey(); got != "get" {
		t.Errorf("key shows as %q", got)
	}
}
