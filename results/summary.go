package results

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// Defaults of SummaryOptions.
const (
	DefaultIdleThreshold = 10 * time.Minute
	DefaultTopN          = 100
)

// SummaryOptions tune Summarize.
type SummaryOptions struct {
	// IdleThreshold: sessions idle for longer than this are counted in
	// IdleOver. Zero means DefaultIdleThreshold (10m); to count every session
	// that is idle at all, use a value below a second such as time.Nanosecond.
	// Idle is reported in whole seconds, so only the whole seconds matter.
	IdleThreshold time.Duration
	// TopN caps each breakdown list; the rest is tallied in OthersKeys and
	// OthersSessions. Zero means DefaultTopN (100); negative means no cap
	// (hazard: one entry per client IP, thousands on a busy node).
	TopN int
}

func (o SummaryOptions) withDefaults() SummaryOptions {
	if o.IdleThreshold <= 0 {
		o.IdleThreshold = DefaultIdleThreshold
	}
	if o.TopN == 0 {
		o.TopN = DefaultTopN
	}
	return o
}

// Count is one key of a breakdown and how many sessions have it. An empty key
// (a session without user, cmd or db) is kept as "" so that the data stays
// exact; use DisplayKey to show it.
type Count struct {
	Key      string `json:"key"`
	Sessions int    `json:"sessions"`
}

// EmptyKeyLabel is how DisplayKey shows the empty key.
const EmptyKeyLabel = "(none)"

// DisplayKey is Key for humans: EmptyKeyLabel for "".
func (c Count) DisplayKey() string {
	if c.Key == "" {
		return EmptyKeyLabel
	}
	return c.Key
}

// Breakdown counts sessions by one attribute. Top holds the TopN keys with the
// most sessions (ties by key); OthersKeys and OthersSessions tally the rest,
// so the sum of Top plus OthersSessions is always Summary.Total.
type Breakdown struct {
	Keys           int     `json:"keys"` // distinct keys, including those in Others
	Top            []Count `json:"top"`
	OthersKeys     int     `json:"others_keys"`
	OthersSessions int     `json:"others_sessions"`
}

// Connection identifies one session for a summary line.
type Connection struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	Name string `json:"name"`
	User string `json:"user"`
	Age  int64  `json:"age_seconds"`
}

// Summary is what a dashboard or an alert needs from a session list.
type Summary struct {
	Total             int       `json:"total"`
	DistinctClientIPs int       `json:"distinct_client_ips"`
	ByClientIP        Breakdown `json:"by_client_ip"`
	ByDB              Breakdown `json:"by_db"`
	ByUser            Breakdown `json:"by_user"`
	ByCmd             Breakdown `json:"by_cmd"`
	// IdleThreshold is the threshold used, in whole seconds; IdleOver counts
	// sessions with idle > IdleThreshold.
	IdleThreshold int64 `json:"idle_threshold_seconds"`
	IdleOver      int   `json:"idle_over"`
	// OldestConnection is the session with the largest age (ties: smallest
	// addr, then id); zero when there are no sessions.
	OldestConnection Connection `json:"oldest_connection"`
	// MaxIdle is the largest idle, in seconds.
	MaxIdle int64 `json:"max_idle_seconds"`
}

// Summarize counts a session list.
func Summarize(clients []dcsapi.ClientInfo, opts SummaryOptions) Summary {
	opts = opts.withDefaults()
	thr := int64(opts.IdleThreshold / time.Second)
	s := Summary{Total: len(clients), IdleThreshold: thr}
	ips := make(map[string]int, 64)
	dbs := make(map[string]int, 4)
	users := make(map[string]int, 8)
	cmds := make(map[string]int, 16)
	var oldest *dcsapi.ClientInfo
	for i := range clients {
		c := &clients[i]
		ips[ClientIP(c.Addr)]++
		dbs[c.DB]++
		users[c.User]++
		cmds[c.Cmd]++
		if c.Idle > thr {
			s.IdleOver++
		}
		if i == 0 || c.Idle > s.MaxIdle {
			s.MaxIdle = c.Idle
		}
		if oldest == nil || c.Age > oldest.Age ||
			(c.Age == oldest.Age && (c.Addr < oldest.Addr || (c.Addr == oldest.Addr && compareIDs(c.ID, oldest.ID) < 0))) {
			oldest = c
		}
	}
	if oldest != nil {
		s.OldestConnection = Connection{ID: oldest.ID, Addr: oldest.Addr, Name: oldest.Name, User: oldest.User, Age: oldest.Age}
	}
	s.DistinctClientIPs = len(ips)
	s.ByClientIP = breakdown(ips, opts.TopN)
	s.ByDB = breakdown(dbs, opts.TopN)
	s.ByUser = breakdown(users, opts.TopN)
	s.ByCmd = breakdown(cmds, opts.TopN)
	return s
}

func breakdown(m map[string]int, topN int) Breakdown {
	b := Breakdown{Keys: len(m)}
	if len(m) == 0 {
		return b
	}
	all := make([]Count, 0, len(m))
	for k, n := range m {
		all = append(all, Count{Key: k, Sessions: n})
	}
	slices.SortFunc(all, func(a, b Count) int {
		if c := cmp.Compare(b.Sessions, a.Sessions); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if topN >= 0 && len(all) > topN {
		for _, c := range all[topN:] {
			b.OthersSessions += c.Sessions
		}
		b.OthersKeys = len(all) - topN
		all = all[:topN:topN]
	}
	b.Top = all
	return b
}

// ClientIP is the IP part of a client addr: "10.0.0.1:5000" → "10.0.0.1",
// "[::1]:6379" → "::1", and an addr without a port is returned as is, which
// includes a bare IPv6 address ("::1", "fe80::1%eth0"). An unbracketed IPv6
// address followed by a port cannot be told apart from an address and is
// returned whole; Redis brackets IPv6 addresses in CLIENT LIST.
func ClientIP(addr string) string {
	if strings.HasPrefix(addr, "[") {
		if end := strings.IndexByte(addr, ']'); end > 0 {
			return addr[1:end]
		}
		return addr
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr
	}
	if strings.IndexByte(addr[:i], ':') < 0 { // exactly one colon: host:port
		return addr[:i]
	}
	// Two or more colons and no brackets: an IPv6 address. Only strip a port
	// if the whole is not an address but the part before the last colon is.
	if _, err := netip.ParseAddr(addr); err == nil {
		return addr
	}
	if _, err := netip.ParseAddr(addr[:i]); err == nil && isDigits(addr[i+1:]) {
		return addr[:i]
	}
	return addr
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compareIDs orders client ids numerically when both are decimal numbers
// (DCS ids are), as strings otherwise.
func compareIDs(a, b string) int {
	if isDigits(a) && isDigits(b) {
		ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if c := cmp.Compare(len(ta), len(tb)); c != 0 {
			return c
		}
		if c := strings.Compare(ta, tb); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}
