package audit

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
)

// Rule names, as results.Finding.Rule carries them and metrics label them.
const (
	RuleClientOutsideCIDRs  = "client_outside_cidrs"
	RuleIdleSessions        = "idle_sessions"
	RuleNewClients          = "new_clients"
	RuleSessionsNearLimit   = "sessions_near_limit"
	RuleSessionsPerClientIP = "sessions_per_client_ip"
)

// RuleNames lists every rule name, sorted: the whole label set of a
// per-rule metric.
func RuleNames() []string {
	return []string{RuleClientOutsideCIDRs, RuleIdleSessions, RuleNewClients, RuleSessionsNearLimit, RuleSessionsPerClientIP}
}

// MaxExamples caps results.Finding.Examples.
const MaxExamples = 10

// Evaluate checks a node's session list against the audit's rules and
// returns a finding per violated rule, sorted by rule name (nil when none is
// violated). It is O(n) in the sessions: one pass, a map of client IPs when
// an IP rule is on, and one CIDR match per distinct IP.
//
// maxClients is the node's maxclients (0: unknown, and then the share rule
// reports nothing unless the rules set max_clients, which takes precedence
// whenever it is set). diff is the comparison with the node's previous
// snapshot, nil for the first one (new_clients then reports nothing); its
// NewCount is the finding's count and its New list gives the examples.
//
// Counts and examples per rule: idle_sessions and client_outside_cidrs count
// sessions; sessions_per_client_ip counts client IPs; sessions_near_limit
// counts all sessions; new_clients counts new sessions. Examples are addrs
// (idle_sessions, new_clients) or client IPs (the IP rules), the first
// MaxExamples in string order; sessions_near_limit has none.
func (a *Audit) Evaluate(clients []dcsapi.ClientInfo, diff *results.Diff, maxClients int64) []results.Finding {
	if a == nil || a.Rules.Empty() {
		return nil
	}
	r := &a.Rules
	var (
		idleThr   int64
		idleCount int
		idleEx    examples
		perIP     map[string]int
		verdict   map[string]bool // client IP → inside an allowed CIDR
		outside   int
	)
	if r.IdleSessions != nil {
		idleThr = int64(r.IdleSessions.LongerThan / time.Second)
	}
	if r.MaxSessionsPerClientIP > 0 {
		perIP = make(map[string]int, 64)
	}
	if len(r.AllowedCIDRs) > 0 {
		verdict = make(map[string]bool, 64)
	}
	for i := range clients {
		c := &clients[i]
		if r.IdleSessions != nil && c.Idle > idleThr {
			idleCount++
			idleEx.add(c.Addr)
		}
		if perIP == nil && verdict == nil {
			continue
		}
		ip := results.ClientIP(c.Addr)
		if perIP != nil {
			perIP[ip]++
		}
		if verdict != nil {
			in, seen := verdict[ip]
			if !seen {
				in = allowed(ip, r.AllowedCIDRs)
				verdict[ip] = in
			}
			if !in {
				outside++
			}
		}
	}

	var out []results.Finding
	add := func(rule string, count int, ex []string, format string, args ...any) {
		out = append(out, results.Finding{Audit: a.Name, Rule: rule, Message: fmt.Sprintf(format, args...),
			Count: count, Examples: ex})
	}
	// Appended in rule-name order.
	if outside > 0 {
		var ex examples
		ips := 0
		for ip, in := range verdict {
			if !in {
				ips++
				ex.add(ip)
			}
		}
		add(RuleClientOutsideCIDRs, outside, ex.list(), "%s from %s outside the allowed CIDRs (%s)",
			plural(outside, "session"), plural(ips, "client IP"), cidrList(r.AllowedCIDRs))
	}
	if r.IdleSessions != nil && idleCount > r.IdleSessions.Max {
		add(RuleIdleSessions, idleCount, idleEx.list(), "%s idle longer than %s (max %d)",
			plural(idleCount, "session"), fmtDuration(r.IdleSessions.LongerThan), r.IdleSessions.Max)
	}
	if r.NewClients && diff != nil && diff.NewCount > 0 {
		var ex examples
		for _, c := range diff.New {
			ex.add(c.Addr)
		}
		add(RuleNewClients, diff.NewCount, ex.list(), "%s absent from the previous snapshot",
			plural(diff.NewCount, "session"))
	}
	if r.MaxShareOfMaxClients > 0 {
		limit, source := maxClients, "maxclients"
		if r.MaxClients > 0 {
			limit, source = r.MaxClients, "max_clients"
		}
		if limit > 0 {
			allowedN := shareOf(r.MaxShareOfMaxClients, limit)
			if n := int64(len(clients)); n > allowedN {
				add(RuleSessionsNearLimit, len(clients), nil, "%s, more than %s%% of %s %d (%d)",
					plural(len(clients), "session"), fmtShare(r.MaxShareOfMaxClients), source, limit, allowedN)
			}
		}
	}
	if perIP != nil {
		var ex examples
		offenders, worst, worstN := 0, "", 0
		for ip, n := range perIP {
			if n <= r.MaxSessionsPerClientIP {
				continue
			}
			offenders++
			ex.add(ip)
			if n > worstN || (n == worstN && ip < worst) {
				worst, worstN = ip, n
			}
		}
		if offenders > 0 {
			add(RuleSessionsPerClientIP, offenders, ex.list(), "%s with more than %d sessions (most: %s with %d)",
				plural(offenders, "client IP"), r.MaxSessionsPerClientIP, displayIP(worst), worstN)
		}
	}
	return out
}

// allowed reports whether a client IP is inside one of the prefixes. An IP
// that does not parse (a unix socket, an empty addr) is not.
func allowed(ip string, cidrs []netip.Prefix) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.WithZone("").Unmap()
	for _, p := range cidrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// shareOf is ⌊share × limit⌋, tolerant of float error (0.7 × 10 is
// 7.000000000000001 and 0.29 × 100 is 28.999999999999996 in float64).
func shareOf(share float64, limit int64) int64 {
	return int64(math.Floor(share*float64(limit) + 1e-6))
}

// examples keeps the MaxExamples smallest distinct non-empty strings added,
// sorted: O(MaxExamples) per add whatever the number of offenders.
type examples struct{ s []string }

func (e *examples) add(v string) {
	if v == "" {
		return
	}
	if len(e.s) == MaxExamples && v >= e.s[MaxExamples-1] {
		return
	}
	i, found := slices.BinarySearch(e.s, v)
	if found {
		return
	}
	if len(e.s) == MaxExamples {
		e.s = e.s[:MaxExamples-1]
	}
	e.s = slices.Insert(e.s, i, v)
}

func (e *examples) list() []string { return e.s }

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func displayIP(ip string) string {
	if ip == "" {
		return `""`
	}
	return ip
}

func cidrList(ps []netip.Prefix) string {
	const show = 4
	parts := make([]string, 0, show+1)
	for i, p := range ps {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-show))
			break
		}
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ", ")
}

// fmtShare shows a share as a percentage without float noise: 0.8 → "80".
func fmtShare(share float64) string {
	return fmt.Sprintf("%.4g", share*100)
}

// fmtDuration is time.Duration.String without the zero tails: 30m, 1h, 1h30m.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
