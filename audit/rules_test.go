package audit

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
)

func sess(addr string, idle int64) dcsapi.ClientInfo {
	return dcsapi.ClientInfo{ID: addr, Addr: addr, Idle: idle}
}

func many(n int, addr func(i int) string, idle int64) []dcsapi.ClientInfo {
	out := make([]dcsapi.ClientInfo, n)
	for i := range out {
		out[i] = sess(addr(i), idle)
	}
	return out
}

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, v := range s {
		out[i] = netip.MustParsePrefix(v)
	}
	return out
}

func TestRuleNames(t *testing.T) {
	t.Parallel()
	want := []string{"client_outside_cidrs", "idle_sessions", "new_clients", "sessions_near_limit", "sessions_per_client_ip"}
	if got := RuleNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("RuleNames = %v, want %v", got, want)
	}
	if RuleIdleSessions != "idle_sessions" || RuleSessionsPerClientIP != "sessions_per_client_ip" ||
		RuleClientOutsideCIDRs != "client_outside_cidrs" || RuleSessionsNearLimit != "sessions_near_limit" ||
		RuleNewClients != "new_clients" {
		t.Error("a rule constant changed")
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	idle30 := &IdleRule{LongerThan: 30 * time.Minute}
	tests := []struct {
		name       string
		rules      Rules
		clients    []dcsapi.ClientInfo
		diff       *results.Diff
		maxClients int64
		want       []results.Finding // Audit is filled in
	}{
		{name: "no rules", clients: []dcsapi.ClientInfo{sess("1.1.1.1:1", 99999)}},

		// idle_sessions
		{name: "idle exactly longer_than", rules: Rules{IdleSessions: idle30},
			clients: []dcsapi.ClientInfo{sess("10.0.0.1:1", 1800), sess("10.0.0.2:1", 0)}},
		{name: "idle one second more", rules: Rules{IdleSessions: idle30},
			clients: []dcsapi.ClientInfo{sess("10.0.0.1:1", 1801), sess("10.0.0.2:1", 1800)},
			want: []results.Finding{{Rule: RuleIdleSessions, Count: 1, Examples: []string{"10.0.0.1:1"},
				Message: "1 session idle longer than 30m (max 0)"}}},
		{name: "idle exactly max", rules: Rules{IdleSessions: &IdleRule{LongerThan: time.Hour, Max: 2}},
			clients: []dcsapi.ClientInfo{sess("b:1", 4000), sess("a:1", 3601), sess("c:1", 3600)}},
		{name: "idle above max", rules: Rules{IdleSessions: &IdleRule{LongerThan: 90 * time.Minute, Max: 2}},
			clients: []dcsapi.ClientInfo{sess("b:1", 6000), sess("a:1", 5401), sess("c:1", 5401), sess("d:1", 5400)},
			want: []results.Finding{{Rule: RuleIdleSessions, Count: 3, Examples: []string{"a:1", "b:1", "c:1"},
				Message: "3 sessions idle longer than 1h30m (max 2)"}}},
		{name: "idle examples capped and sorted", rules: Rules{IdleSessions: idle30},
			clients: many(25, func(i int) string { return fmt.Sprintf("10.0.0.%d:6379", 30-i) }, 4000),
			want: []results.Finding{{Rule: RuleIdleSessions, Count: 25,
				Examples: []string{"10.0.0.10:6379", "10.0.0.11:6379", "10.0.0.12:6379", "10.0.0.13:6379", "10.0.0.14:6379",
					"10.0.0.15:6379", "10.0.0.16:6379", "10.0.0.17:6379", "10.0.0.18:6379", "10.0.0.19:6379"},
				Message: "25 sessions idle longer than 30m (max 0)"}}},

		// sessions_per_client_ip
		{name: "per ip exactly max", rules: Rules{MaxSessionsPerClientIP: 2},
			clients: []dcsapi.ClientInfo{sess("10.0.0.1:1", 0), sess("10.0.0.1:2", 0), sess("10.0.0.2:1", 0), sess("10.0.0.2:2", 0)}},
		{name: "per ip above max, v4 and v6 and no port", rules: Rules{MaxSessionsPerClientIP: 2},
			clients: []dcsapi.ClientInfo{
				sess("10.0.0.1:1", 0), sess("10.0.0.1:2", 0), sess("10.0.0.1:3", 0), sess("10.0.0.1:4", 0),
				sess("[2001:db8::1]:1", 0), sess("[2001:db8::1]:2", 0), sess("2001:db8::1", 0),
				sess("10.0.0.2:1", 0), sess("10.0.0.2:2", 0),
				sess("10.0.0.3", 0), sess("10.0.0.3", 0), sess("10.0.0.3:9", 0)},
			want: []results.Finding{{Rule: RuleSessionsPerClientIP, Count: 3, Examples: []string{"10.0.0.1", "10.0.0.3", "2001:db8::1"},
				Message: "3 client IPs with more than 2 sessions (most: 10.0.0.1 with 4)"}}},

		// client_outside_cidrs
		{name: "cidr all inside", rules: Rules{AllowedCIDRs: prefixes("10.0.0.0/8", "fd00::/8", "fe80::/10")},
			clients: []dcsapi.ClientInfo{sess("10.1.2.3:5000", 0), sess("10.255.255.255", 0), sess("[fd00::1]:6379", 0),
				sess("fd12::7", 0), sess("[::ffff:10.0.0.1]:1", 0), sess("[fe80::1%eth0]:6379", 0)}},
		{name: "cidr outside", rules: Rules{AllowedCIDRs: prefixes("10.0.0.0/8", "fd00::/8")},
			clients: []dcsapi.ClientInfo{sess("10.1.2.3:5000", 0), sess("11.0.0.1:5000", 0), sess("11.0.0.1:5001", 0),
				sess("[2001:db8::1]:6379", 0), sess("172.16.0.1", 0), sess("[fd00::1]:1", 0), sess("/tmp/redis.sock:0", 0), sess("", 0)},
			want: []results.Finding{{Rule: RuleClientOutsideCIDRs, Count: 6,
				Examples: []string{"/tmp/redis.sock", "11.0.0.1", "172.16.0.1", "2001:db8::1"},
				Message:  "6 sessions from 5 client IPs outside the allowed CIDRs (10.0.0.0/8, fd00::/8)"}}},
		{name: "cidr ipv6 only rule and mapped v4", rules: Rules{AllowedCIDRs: prefixes("2001:db8::/32")},
			clients: []dcsapi.ClientInfo{sess("[2001:db8:1::5]:1", 0), sess("[::ffff:10.0.0.1]:1", 0)},
			want: []results.Finding{{Rule: RuleClientOutsideCIDRs, Count: 1, Examples: []string{"::ffff:10.0.0.1"},
				Message: "1 session from 1 client IP outside the allowed CIDRs (2001:db8::/32)"}}},
		{name: "cidr list shortened", rules: Rules{AllowedCIDRs: prefixes("10.0.0.0/8", "10.0.0.0/9", "10.0.0.0/10", "10.0.0.0/11", "10.0.0.0/12", "10.0.0.0/13")},
			clients: []dcsapi.ClientInfo{sess("1.2.3.4:5", 0)},
			want: []results.Finding{{Rule: RuleClientOutsideCIDRs, Count: 1, Examples: []string{"1.2.3.4"},
				Message: "1 session from 1 client IP outside the allowed CIDRs (10.0.0.0/8, 10.0.0.0/9, 10.0.0.0/10, 10.0.0.0/11, and 2 more)"}}},

		// sessions_near_limit
		{name: "share exactly", rules: Rules{MaxShareOfMaxClients: 0.8}, maxClients: 10,
			clients: many(8, func(i int) string { return fmt.Sprint("a:", i) }, 0)},
		{name: "share above", rules: Rules{MaxShareOfMaxClients: 0.8}, maxClients: 10,
			clients: many(9, func(i int) string { return fmt.Sprint("a:", i) }, 0),
			want: []results.Finding{{Rule: RuleSessionsNearLimit, Count: 9,
				Message: "9 sessions, more than 80% of maxclients 10 (8)"}}},
		{name: "share float boundary 0.7×10", rules: Rules{MaxShareOfMaxClients: 0.7}, maxClients: 10,
			clients: many(7, func(i int) string { return fmt.Sprint("a:", i) }, 0)},
		{name: "share float boundary 0.29×100", rules: Rules{MaxShareOfMaxClients: 0.29}, maxClients: 100,
			clients: many(29, func(i int) string { return fmt.Sprint("a:", i) }, 0)},
		{name: "share 1 at the limit", rules: Rules{MaxShareOfMaxClients: 1}, maxClients: 3,
			clients: many(3, func(i int) string { return fmt.Sprint("a:", i) }, 0)},
		{name: "share maxclients unknown", rules: Rules{MaxShareOfMaxClients: 0.5}, maxClients: 0,
			clients: many(100, func(i int) string { return fmt.Sprint("a:", i) }, 0)},
		{name: "share max_clients when unknown", rules: Rules{MaxShareOfMaxClients: 0.5, MaxClients: 10}, maxClients: 0,
			clients: many(6, func(i int) string { return fmt.Sprint("a:", i) }, 0),
			want: []results.Finding{{Rule: RuleSessionsNearLimit, Count: 6,
				Message: "6 sessions, more than 50% of max_clients 10 (5)"}}},
		{name: "share max_clients wins", rules: Rules{MaxShareOfMaxClients: 0.5, MaxClients: 100}, maxClients: 10,
			clients: many(6, func(i int) string { return fmt.Sprint("a:", i) }, 0)},

		// new_clients
		{name: "new first snapshot", rules: Rules{NewClients: true}, diff: nil,
			clients: []dcsapi.ClientInfo{sess("a:1", 0)}},
		{name: "new none", rules: Rules{NewClients: true}, diff: &results.Diff{PreviousID: "p", Unchanged: 1},
			clients: []dcsapi.ClientInfo{sess("a:1", 0)}},
		{name: "new some", rules: Rules{NewClients: true},
			diff: &results.Diff{PreviousID: "p", NewCount: 1200, New: []results.ClientRef{{ID: "9", Addr: "b:2"},
				{ID: "8", Addr: "a:1"}, {ID: "7", Addr: "a:1"}}},
			want: []results.Finding{{Rule: RuleNewClients, Count: 1200, Examples: []string{"a:1", "b:2"},
				Message: "1200 sessions absent from the previous snapshot"}}},
		{name: "new off", diff: &results.Diff{NewCount: 3}, rules: Rules{IdleSessions: idle30}},

		// every rule at once: ordered by rule name
		{name: "all rules", maxClients: 4, rules: Rules{IdleSessions: idle30, MaxSessionsPerClientIP: 1,
			AllowedCIDRs: prefixes("10.0.0.0/8"), MaxShareOfMaxClients: 0.5, NewClients: true},
			clients: []dcsapi.ClientInfo{sess("10.0.0.1:1", 2000), sess("10.0.0.1:2", 0), sess("9.9.9.9:1", 0)},
			diff:    &results.Diff{NewCount: 1, New: []results.ClientRef{{ID: "1", Addr: "9.9.9.9:1"}}},
			want: []results.Finding{
				{Rule: RuleClientOutsideCIDRs, Count: 1, Examples: []string{"9.9.9.9"},
					Message: "1 session from 1 client IP outside the allowed CIDRs (10.0.0.0/8)"},
				{Rule: RuleIdleSessions, Count: 1, Examples: []string{"10.0.0.1:1"}, Message: "1 session idle longer than 30m (max 0)"},
				{Rule: RuleNewClients, Count: 1, Examples: []string{"9.9.9.9:1"}, Message: "1 session absent from the previous snapshot"},
				{Rule: RuleSessionsNearLimit, Count: 3, Message: "3 sessions, more than 50% of maxclients 4 (2)"},
				{Rule: RuleSessionsPerClientIP, Count: 1, Examples: []string{"10.0.0.1"},
					Message: "1 client IP with more than 1 sessions (most: 10.0.0.1 with 2)"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &Audit{Name: "orders-cache", Rules: tt.rules}
			got := a.Evaluate(tt.clients, tt.diff, tt.maxClients)
			for i := range tt.want {
				tt.want[i].Audit = "orders-cache"
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Evaluate:\n got %#v\nwant %#v", got, tt.want)
			}
			if !slices.IsSortedFunc(got, func(a, b results.Finding) int { return strings.Compare(a.Rule, b.Rule) }) {
				t.Error("findings not sorted by rule")
			}
			for _, f := range got {
				if len(f.Examples) > MaxExamples || !slices.IsSorted(f.Examples) {
					t.Errorf("%s: examples %v", f.Rule, f.Examples)
				}
			}
		})
	}
}

func TestEvaluateNil(t *testing.T) {
	t.Parallel()
	var a *Audit
	if got := a.Evaluate([]dcsapi.ClientInfo{sess("a:1", 1)}, nil, 1); got != nil {
		t.Errorf("nil audit: %v", got)
	}
	b := &Audit{Rules: Rules{IdleSessions: &IdleRule{LongerThan: time.Second}, MaxShareOfMaxClients: 0.5}}
	if got := b.Evaluate(nil, nil, 10); got != nil {
		t.Errorf("no sessions: %v", got)
	}
}

func TestExamples(t *testing.T) {
	t.Parallel()
	var e examples
	for _, v := range []string{"m", "c", "", "a", "z", "c", "b", "k", "j", "i", "h", "g", "f", "e", "d", "a"} {
		e.add(v)
	}
	if want := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}; !reflect.DeepEqual(e.list(), want) {
		t.Errorf("examples = %v, want %v", e.list(), want)
	}
}

func TestFmtDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		30 * time.Minute: "30m", time.Hour: "1h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s",
		45 * time.Second: "45s", 2*time.Hour + time.Second: "2h0m1s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// BenchmarkEvaluate: every rule on 50,000 sessions from 500 client IPs.
func BenchmarkEvaluate(b *testing.B) {
	clients := make([]dcsapi.ClientInfo, 50000)
	for i := range clients {
		clients[i] = dcsapi.ClientInfo{ID: fmt.Sprint(i), Addr: fmt.Sprintf("10.%d.%d.%d:%d", i%5, i%100, i%500%256, 20000+i%40000),
			Idle: int64(i % 3600)}
	}
	clients[777].Addr = "172.16.0.9:4000"
	diff := &results.Diff{NewCount: 1, New: []results.ClientRef{{ID: "1", Addr: "10.0.0.1:20001"}}}
	a := &Audit{Name: "bench", Rules: Rules{IdleSessions: &IdleRule{LongerThan: 30 * time.Minute},
		MaxSessionsPerClientIP: 50, AllowedCIDRs: prefixes("10.0.0.0/8", "fd00::/8"), MaxShareOfMaxClients: 0.8,
		NewClients: true}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if f := a.Evaluate(clients, diff, 60000); len(f) != 5 {
			b.Fatalf("%d findings: %+v", len(f), f)
		}
	}
}
