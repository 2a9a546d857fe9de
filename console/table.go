package console

import (
	"cmp"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
)

// column is one of the 21 DCS fields of a session.
type column struct {
	Key   string // the DCS field name, used in ?sort=
	Label string
	Num   bool // numeric: sorted as numbers, first click sorts descending
	str   func(c *dcsapi.ClientInfo) string
	num   func(c *dcsapi.ClientInfo) int64
	human bool // numeric seconds shown as a duration
}

func strCol(key, label string, f func(c *dcsapi.ClientInfo) string) column {
	return column{Key: key, Label: label, str: f}
}

func numCol(key, label string, f func(c *dcsapi.ClientInfo) int64) column {
	return column{Key: key, Label: label, Num: true, num: f}
}

// columns are the DCS fields in the order of the API's documentation.
var columns = []column{
	strCol("id", "id", func(c *dcsapi.ClientInfo) string { return c.ID }),
	strCol("addr", "addr", func(c *dcsapi.ClientInfo) string { return c.Addr }),
	strCol("fd", "fd", func(c *dcsapi.ClientInfo) string { return c.FD }),
	strCol("name", "name", func(c *dcsapi.ClientInfo) string { return c.Name }),
	strCol("cmd", "cmd", func(c *dcsapi.ClientInfo) string { return c.Cmd }),
	{Key: "age", Label: "age", Num: true, human: true, num: func(c *dcsapi.ClientInfo) int64 { return c.Age }},
	{Key: "idle", Label: "idle", Num: true, human: true, num: func(c *dcsapi.ClientInfo) int64 { return c.Idle }},
	strCol("db", "db", func(c *dcsapi.ClientInfo) string { return c.DB }),
	strCol("flags", "flags", func(c *dcsapi.ClientInfo) string { return c.Flags }),
	numCol("sub", "sub", func(c *dcsapi.ClientInfo) int64 { return c.Sub }),
	numCol("psub", "psub", func(c *dcsapi.ClientInfo) int64 { return c.Psub }),
	numCol("multi", "multi", func(c *dcsapi.ClientInfo) int64 { return c.Multi }),
	numCol("qbuf", "qbuf", func(c *dcsapi.ClientInfo) int64 { return c.Qbuf }),
	numCol("qbuf_free", "qbuf_free", func(c *dcsapi.ClientInfo) int64 { return c.QbufFree }),
	numCol("obl", "obl", func(c *dcsapi.ClientInfo) int64 { return c.Obl }),
	numCol("oll", "oll", func(c *dcsapi.ClientInfo) int64 { return c.Oll }),
	numCol("omem", "omem", func(c *dcsapi.ClientInfo) int64 { return c.Omem }),
	strCol("events", "events", func(c *dcsapi.ClientInfo) string { return c.Events }),
	strCol("network", "network", func(c *dcsapi.ClientInfo) string { return c.Network }),
	strCol("peer", "peer", func(c *dcsapi.ClientInfo) string { return c.Peer }),
	strCol("user", "user", func(c *dcsapi.ClientInfo) string { return c.User }),
}

func columnByKey(key string) (column, bool) {
	for _, c := range columns {
		if c.Key == key {
			return c, true
		}
	}
	return column{}, false
}

// query is the state of the session table, read from and written to the URL.
type query struct {
	Sort string // a column key; "" is the DCS order
	Desc bool
	Page int // 1-based
	Addr string
	Name string
	User string
	DB   string
	Cmd  string
	Snap string // ?snapshot=: a history entry instead of the latest
}

// maxFilterLen bounds a filter value; longer ones are cut.
const maxFilterLen = 200

func parseQuery(v url.Values) query {
	q := query{Sort: v.Get("sort"), Desc: v.Get("order") == "desc", Snap: v.Get("snapshot")}
	if _, ok := columnByKey(q.Sort); !ok {
		q.Sort, q.Desc = "", false
	}
	q.Page, _ = strconv.Atoi(v.Get("page"))
	q.Page = max(q.Page, 1)
	f := func(k string) string {
		s := strings.TrimSpace(v.Get(k))
		if len(s) > maxFilterLen {
			s = s[:maxFilterLen]
		}
		return s
	}
	q.Addr, q.Name, q.User, q.DB, q.Cmd = f("addr"), f("name"), f("user"), f("db"), f("cmd")
	return q
}

// Filtered reports whether a filter is set.
func (q query) Filtered() bool {
	return q.Addr != "" || q.Name != "" || q.User != "" || q.DB != "" || q.Cmd != ""
}

// values encodes q; zero fields are left out so that URLs stay short.
func (q query) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("snapshot", q.Snap)
	set("addr", q.Addr)
	set("name", q.Name)
	set("user", q.User)
	set("db", q.DB)
	set("cmd", q.Cmd)
	if q.Sort != "" {
		v.Set("sort", q.Sort)
		if q.Desc {
			v.Set("order", "desc")
		} else {
			v.Set("order", "asc")
		}
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	return v
}

// href is the node page at q, with the table as anchor when asked.
func (q query) href(base string, anchor bool) string {
	s := base
	if e := q.values().Encode(); e != "" {
		s += "?" + e
	}
	if anchor {
		s += "#sessions"
	}
	return s
}

// ---- sorting and filtering ----

// entry is a decoded snapshot in the cache with what the table derives from
// it: sorted orders by sort key, and lower-cased filter fields.
type entry struct {
	snap    *results.Snapshot
	expires time.Time

	mu     sync.Mutex
	orders map[string][]int32 // "idle desc" → row indexes

	lowerOnce sync.Once
	lower     [4][]string // addr, name, user, cmd lower-cased
}

const (
	fAddr = iota
	fName
	fUser
	fCmd
)

func (e *entry) lowered() *[4][]string {
	e.lowerOnce.Do(func() {
		cs := e.snap.Clients
		for i := range e.lower {
			e.lower[i] = make([]string, len(cs))
		}
		for i := range cs {
			e.lower[fAddr][i] = strings.ToLower(cs[i].Addr)
			e.lower[fName][i] = strings.ToLower(cs[i].Name)
			e.lower[fUser][i] = strings.ToLower(cs[i].User)
			e.lower[fCmd][i] = strings.ToLower(cs[i].Cmd)
		}
	})
	return &e.lower
}

// order returns the row indexes sorted by key (computed once per entry).
// Ties keep the DCS order, so paging is stable.
func (e *entry) order(sortKey string, desc bool) []int32 {
	k := sortKey
	if desc {
		k += " desc"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if o, ok := e.orders[k]; ok {
		return o
	}
	o := sortRows(e.snap.Clients, sortKey, desc)
	if e.orders == nil {
		e.orders = map[string][]int32{}
	}
	if len(e.orders) >= 8 { // a bound on memory: 4 bytes a row per order
		clear(e.orders)
	}
	e.orders[k] = o
	return o
}

func sortRows(cs []dcsapi.ClientInfo, key string, desc bool) []int32 {
	idx := make([]int32, len(cs))
	for i := range idx {
		idx[i] = int32(i)
	}
	col, ok := columnByKey(key)
	if !ok {
		return idx
	}
	sign := 1
	if desc {
		sign = -1
	}
	var c func(a, b int32) int
	switch {
	case col.num != nil:
		keys := make([]int64, len(cs))
		for i := range cs {
			keys[i] = col.num(&cs[i])
		}
		c = func(a, b int32) int { return sign * cmp.Compare(keys[a], keys[b]) }
	case key == "addr" || key == "peer":
		keys := make([]addrKey, len(cs))
		for i := range cs {
			keys[i] = parseAddr(col.str(&cs[i]))
		}
		c = func(a, b int32) int { return sign * keys[a].compare(keys[b]) }
	default:
		// Numbers sort as numbers when both are decimal (id, fd, db).
		keys := make([]string, len(cs))
		for i := range cs {
			keys[i] = col.str(&cs[i])
		}
		c = func(a, b int32) int { return sign * compareNumeric(keys[a], keys[b]) }
	}
	slices.SortFunc(idx, func(a, b int32) int { return cmp.Or(c(a, b), cmp.Compare(a, b)) })
	return idx
}

// addrKey orders addresses by IP then port; unparsable ones after, as text.
type addrKey struct {
	ap  netip.AddrPort
	ok  bool
	raw string
}

func parseAddr(s string) addrKey {
	ap, err := netip.ParseAddrPort(s)
	return addrKey{ap: ap, ok: err == nil, raw: s}
}

func (a addrKey) compare(b addrKey) int {
	switch {
	case a.ok && b.ok:
		return a.ap.Compare(b.ap)
	case a.ok:
		return -1
	case b.ok:
		return 1
	}
	return strings.Compare(a.raw, b.raw)
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

// compareNumeric orders decimal numbers numerically, anything else as text
// (numbers first).
func compareNumeric(a, b string) int {
	da, db := isDigits(a), isDigits(b)
	switch {
	case da && db:
		ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		return cmp.Or(cmp.Compare(len(ta), len(tb)), strings.Compare(ta, tb), strings.Compare(a, b))
	case da:
		return -1
	case db:
		return 1
	}
	return strings.Compare(a, b)
}

// filter returns the rows of order that match q: addr, name, user and cmd by
// case-insensitive substring, db exactly (db "1" must not match "10").
func (e *entry) filter(order []int32, q query) []int32 {
	if !q.Filtered() {
		return order
	}
	low := e.lowered()
	type sub struct {
		col    []string
		needle string
	}
	var subs []sub
	for i, s := range [4]string{fAddr: q.Addr, fName: q.Name, fUser: q.User, fCmd: q.Cmd} {
		if s != "" {
			subs = append(subs, sub{low[i], strings.ToLower(s)})
		}
	}
	cs := e.snap.Clients
	out := make([]int32, 0, 256)
rows:
	for _, i := range order {
		if q.DB != "" && cs[i].DB != q.DB {
			continue
		}
		for _, s := range subs {
			if !strings.Contains(s.col[i], s.needle) {
				continue rows
			}
		}
		out = append(out, i)
	}
	return out
}

// ---- cache ----

// The cache keeps decoded snapshots briefly: sorting, filtering and paging
// through a 50,000-session node then reads and decodes it once, not on every
// click. Keys include the snapshot id, and a snapshot never changes under its
// id, so a hit is never stale; the TTL only bounds memory.
const (
	cacheTTL         = 30 * time.Second
	cacheMaxSessions = 200_000 // about 60 MB of decoded sessions
)

type snapCache struct {
	mu       sync.Mutex
	ttl      time.Duration
	max      int
	now      func() time.Time
	entries  map[string]*entry
	sessions int
}

func newSnapCache(ttl time.Duration, maxSessions int, now func() time.Time) *snapCache {
	return &snapCache{ttl: ttl, max: maxSessions, now: now, entries: map[string]*entry{}}
}

func cacheKey(inst, node, id string) string { return inst + "/" + node + "/" + id }

func (c *snapCache) get(key string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil
	}
	if c.now().After(e.expires) {
		c.drop(key, e)
		return nil
	}
	return e
}

func (c *snapCache) drop(key string, e *entry) {
	delete(c.entries, key)
	c.sessions -= len(e.snap.Clients)
}

func (c *snapCache) put(key string, snap *results.Snapshot) *entry {
	e := &entry{snap: snap}
	n := len(snap.Clients)
	if n > c.max {
		return e // too big to keep: served once
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	e.expires = now.Add(c.ttl)
	if old, ok := c.entries[key]; ok {
		c.drop(key, old)
	}
	for k, old := range c.entries {
		if now.After(old.expires) {
			c.drop(k, old)
		}
	}
	for c.sessions+n > c.max {
		// Evict the entry closest to expiry (the oldest).
		var ok string
		var oe *entry
		for k, old := range c.entries {
			if oe == nil || old.expires.Before(oe.expires) {
				ok, oe = k, old
			}
		}
		c.drop(ok, oe)
	}
	c.entries[key] = e
	c.sessions += n
	return e
}
