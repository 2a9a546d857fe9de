package dcssim

import (
	"cmp"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Client is one session as ListClients reports it (GoSDK ClientInfo).
type Client struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	FD       string `json:"fd"`
	Name     string `json:"name"`
	Cmd      string `json:"cmd"`
	Age      int64  `json:"age"`
	Idle     int64  `json:"idle"`
	DB       string `json:"db"`
	Flags    string `json:"flags"`
	Sub      int64  `json:"sub"`
	Psub     int64  `json:"psub"`
	Multi    int64  `json:"multi"`
	Qbuf     int64  `json:"qbuf"`
	QbufFree int64  `json:"qbuf_free"`
	Obl      int64  `json:"obl"`
	Oll      int64  `json:"oll"`
	Omem     int64  `json:"omem"`
	Events   string `json:"events"`
	Network  string `json:"network"`
	Peer     string `json:"peer"`
	User     string `json:"user"`
}

// sortFields maps each ClientInfo field name to a comparison. id and fd are
// strings on the wire but hold numbers, so they sort numerically too.
var sortFields = map[string]func(a, b *Client) int{
	"id":        func(a, b *Client) int { return cmpNumStr(a.ID, b.ID) },
	"addr":      func(a, b *Client) int { return strings.Compare(a.Addr, b.Addr) },
	"fd":        func(a, b *Client) int { return cmpNumStr(a.FD, b.FD) },
	"name":      func(a, b *Client) int { return strings.Compare(a.Name, b.Name) },
	"cmd":       func(a, b *Client) int { return strings.Compare(a.Cmd, b.Cmd) },
	"age":       func(a, b *Client) int { return cmp.Compare(a.Age, b.Age) },
	"idle":      func(a, b *Client) int { return cmp.Compare(a.Idle, b.Idle) },
	"db":        func(a, b *Client) int { return cmpNumStr(a.DB, b.DB) },
	"flags":     func(a, b *Client) int { return strings.Compare(a.Flags, b.Flags) },
	"sub":       func(a, b *Client) int { return cmp.Compare(a.Sub, b.Sub) },
	"psub":      func(a, b *Client) int { return cmp.Compare(a.Psub, b.Psub) },
	"multi":     func(a, b *Client) int { return cmp.Compare(a.Multi, b.Multi) },
	"qbuf":      func(a, b *Client) int { return cmp.Compare(a.Qbuf, b.Qbuf) },
	"qbuf_free": func(a, b *Client) int { return cmp.Compare(a.QbufFree, b.QbufFree) },
	"obl":       func(a, b *Client) int { return cmp.Compare(a.Obl, b.Obl) },
	"oll":       func(a, b *Client) int { return cmp.Compare(a.Oll, b.Oll) },
	"omem":      func(a, b *Client) int { return cmp.Compare(a.Omem, b.Omem) },
	"events":    func(a, b *Client) int { return strings.Compare(a.Events, b.Events) },
	"network":   func(a, b *Client) int { return strings.Compare(a.Network, b.Network) },
	"peer":      func(a, b *Client) int { return strings.Compare(a.Peer, b.Peer) },
	"user":      func(a, b *Client) int { return strings.Compare(a.User, b.User) },
}

func cmpNumStr(a, b string) int {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return strings.Compare(a, b)
}

// sortClients sorts a copy of cs by field (stable, ties broken by id so pages
// never overlap).
func sortClients(cs []Client, field string, desc bool) []Client {
	out := slices.Clone(cs)
	f := sortFields[field]
	if f == nil {
		f = sortFields["id"]
	}
	slices.SortStableFunc(out, func(a, b Client) int {
		c := f(&a, &b)
		if desc {
			c = -c
		}
		if c == 0 {
			c = cmpNumStr(a.ID, b.ID)
		}
		return c
	})
	return out
}

// filterAddr keeps sessions matching addr: "ip:port" matches exactly, a bare
// IP matches every port of that IP.
func filterAddr(cs []Client, addr string) []Client {
	if addr == "" {
		return cs
	}
	exact := true
	if net.ParseIP(addr) != nil || net.ParseIP(strings.Trim(addr, "[]")) != nil {
		exact = false
		addr = strings.Trim(addr, "[]")
	}
	var out []Client
	for _, c := range cs {
		if exact {
			if c.Addr == addr {
				out = append(out, c)
			}
			continue
		}
		host, _, err := net.SplitHostPort(c.Addr)
		if err == nil && host == addr {
			out = append(out, c)
		}
	}
	return out
}

// ---- synthetic sessions ----

type app struct {
	subnet string // "10.20.1."
	hosts  int    // number of client hosts in the subnet
	name   string // client name prefix, "" for anonymous clients
	user   string
	cmds   []string
	hot    bool // a few hosts with a large connection pool
}

var apps = []app{
	{subnet: "10.20.1.", hosts: 12, name: "orders-api", user: "default", cmds: []string{"get", "set", "hgetall", "expire", "mget"}, hot: true},
	{subnet: "10.20.2.", hosts: 6, name: "billing-worker", user: "app_rw", cmds: []string{"brpop", "lpush", "get", "incr"}},
	{subnet: "10.20.3.", hosts: 20, name: "", user: "default", cmds: []string{"get", "ping", "set", "NULL", "exists"}},
	{subnet: "172.16.8.", hosts: 4, name: "session-cache", user: "default", cmds: []string{"get", "setex", "del", "ttl"}, hot: true},
	{subnet: "172.16.9.", hosts: 3, name: "", user: "readonly", cmds: []string{"scan", "info", "client", "ping"}},
	{subnet: "10.30.7.", hosts: 5, name: "notifier", user: "default", cmds: []string{"subscribe", "psubscribe"}},
}

// appWeights: share of sessions per app (same order as apps).
var appWeights = []int{40, 15, 20, 15, 4, 6}

func nodeHash(node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	return h.Sum64()
}

type generator struct {
	r      *rand.Rand
	peer   string
	used   map[string]bool
	nextID int64
	nextFD int64
}

func pickApp(r *rand.Rand) int {
	x := r.IntN(100)
	for i, w := range appWeights {
		if x < w {
			return i
		}
		x -= w
	}
	return 0
}

// newClient makes one session connected age seconds ago.
func (g *generator) newClient(age int64) Client {
	r := g.r
	a := apps[pickApp(r)]
	host := r.IntN(a.hosts)
	if a.hot && r.IntN(3) > 0 {
		host = r.IntN(2) // two hosts with big pools
	}
	ip := a.subnet + strconv.Itoa(11+host)
	var addr string
	for {
		addr = ip + ":" + strconv.Itoa(20000+r.IntN(40000))
		if !g.used[addr] {
			g.used[addr] = true
			break
		}
	}
	g.nextID += 1 + int64(r.IntN(3))
	g.nextFD++
	c := Client{
		ID: strconv.FormatInt(g.nextID, 10), Addr: addr, FD: strconv.FormatInt(8+g.nextFD%60000, 10),
		Cmd: a.cmds[r.IntN(len(a.cmds))], Age: age, DB: "0", Flags: "N", Multi: -1,
		Events: "r", Network: "ipv4", Peer: g.peer, User: a.user,
	}
	if a.name != "" {
		c.Name = a.name + "-" + strconv.Itoa(1+host%8)
	}
	if r.IntN(20) == 0 {
		c.DB = strconv.Itoa(1 + r.IntN(3))
	}
	switch c.Cmd {
	case "subscribe":
		c.Flags, c.Sub = "P", int64(1+r.IntN(4))
	case "psubscribe":
		c.Flags, c.Psub = "P", int64(1+r.IntN(2))
	}
	c.Idle = g.idle(age)
	if r.IntN(10) == 0 {
		c.Qbuf, c.QbufFree = 26, 20448
	}
	if r.IntN(50) == 0 {
		c.Oll, c.Omem = int64(1+r.IntN(5)), int64(16384+r.IntN(200000))
	}
	return c
}

// idle draws an idle time ≤ age: mostly seconds, some for hours.
func (g *generator) idle(age int64) int64 {
	var v int64
	switch x := g.r.IntN(100); {
	case x < 55:
		v = int64(g.r.IntN(5))
	case x < 85:
		v = int64(g.r.IntN(300))
	default:
		v = int64(3600 + g.r.IntN(5*3600))
	}
	return min(v, age)
}

// initialAge draws the age of a session present at the first scan: pools
// live for hours or days.
func (g *generator) initialAge() int64 {
	switch x := g.r.IntN(100); {
	case x < 20:
		return int64(g.r.IntN(600))
	case x < 60:
		return int64(600 + g.r.IntN(6*3600))
	default:
		return int64(6*3600 + g.r.IntN(7*24*3600))
	}
}

func newGenerator(seed uint64, node string, scan int, peer string) *generator {
	return &generator{r: rand.New(rand.NewPCG(seed, nodeHash(node)^uint64(scan)*0x9e3779b97f4a7c15)), peer: peer}
}

// generateSessions makes the first snapshot of a node: n sessions, ids
// increasing, deterministic in (seed, node).
func generateSessions(seed uint64, node, peer string, n int) []Client {
	g := newGenerator(seed, node, 0, peer)
	g.used = make(map[string]bool, n)
	g.nextID = int64(1000 + g.r.IntN(5000))
	out := make([]Client, n)
	for i := range out {
		out[i] = g.newClient(g.initialAge())
	}
	return out
}

// evolveSessions makes scan number scan (≥1) from the previous snapshot,
// elapsed after it: about 8% disconnect (at least one), as many new ones
// connect, ages grow by elapsed, idle times move on. Deterministic in
// (seed, node, scan, elapsed, prev).
func evolveSessions(seed uint64, node, peer string, scan int, prev []Client, elapsed time.Duration) []Client {
	g := newGenerator(seed, node, scan, peer)
	g.used = make(map[string]bool, len(prev))
	el := max(int64(elapsed/time.Second), 0)
	for _, c := range prev {
		if id, err := strconv.ParseInt(c.ID, 10, 64); err == nil && id > g.nextID {
			g.nextID = id
		}
		g.used[c.Addr] = true
	}
	out := make([]Client, 0, len(prev))
	dropped := 0
	forced := -1
	if len(prev) > 0 {
		forced = g.r.IntN(len(prev))
	}
	for i, c := range prev {
		if i == forced || g.r.IntN(100) < 8 {
			dropped++
			continue
		}
		c.Age += el
		if g.r.IntN(100) < 60 {
			c.Idle = min(g.idle(c.Age), c.Age)
		} else {
			c.Idle = min(c.Idle+el, c.Age)
		}
		out = append(out, c)
	}
	for range dropped {
		age := int64(0)
		if el > 0 {
			age = g.r.Int64N(el + 1)
		}
		out = append(out, g.newClient(age))
	}
	return out
}

// ---- live sessions ----

// parseClientList parses the text of Redis CLIENT LIST into sessions.
// laddr becomes peer (falling back to fallbackPeer on old Redis versions),
// qbuf-free becomes qbuf_free, and network follows the address family.
func parseClientList(text, fallbackPeer string) []Client {
	var out []Client
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		c := Client{Peer: fallbackPeer, Multi: -1}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "id":
				c.ID = v
			case "addr":
				c.Addr = v
			case "laddr":
				c.Peer = v
			case "fd":
				c.FD = v
			case "name":
				c.Name = v
			case "age":
				c.Age = n
			case "idle":
				c.Idle = n
			case "flags":
				c.Flags = v
			case "db":
				c.DB = v
			case "sub":
				c.Sub = n
			case "psub":
				c.Psub = n
			case "multi":
				c.Multi = n
			case "qbuf":
				c.Qbuf = n
			case "qbuf-free":
				c.QbufFree = n
			case "obl":
				c.Obl = n
			case "oll":
				c.Oll = n
			case "omem":
				c.Omem = n
			case "events":
				c.Events = v
			case "cmd":
				c.Cmd = v
			case "user":
				c.User = v
			}
		}
		c.Network = networkOf(c.Addr)
		if c.User == "" {
			c.User = "default"
		}
		out = append(out, c)
	}
	return out
}

func networkOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return "unix"
	case ip.To4() != nil:
		return "ipv4"
	default:
		return "ipv6"
	}
}

// ---- quirks encoding ----

// quirkClient is ClientInfo as older or sloppier API versions sent it:
// idle/age strings, db a number, nulls, unknown extra fields.
type quirkClient struct {
	ID       string  `json:"id"`
	Addr     string  `json:"addr"`
	FD       string  `json:"fd"`
	Name     *string `json:"name"`
	Cmd      *string `json:"cmd"`
	Age      string  `json:"age"`
	Idle     string  `json:"idle"`
	DB       int     `json:"db"`
	Flags    string  `json:"flags"`
	Sub      int64   `json:"sub"`
	Psub     int64   `json:"psub"`
	Multi    int64   `json:"multi"`
	Qbuf     int64   `json:"qbuf"`
	QbufFree int64   `json:"qbuf_free"`
	Obl      int64   `json:"obl"`
	Oll      int64   `json:"oll"`
	Omem     int64   `json:"omem"`
	Events   string  `json:"events"`
	Network  *string `json:"network"`
	Peer     *string `json:"peer"`
	User     *string `json:"user"`
	TotMem   int64   `json:"tot_mem"`
	ArgvMem  int64   `json:"argv_mem"`
	Resp     int     `json:"resp"`
	LibName  *string `json:"lib_name"`
}

func quirky(cs []Client) []quirkClient {
	out := make([]quirkClient, len(cs))
	for i := range cs {
		c := &cs[i]
		id, _ := strconv.ParseInt(c.ID, 10, 64)
		db, _ := strconv.Atoi(c.DB)
		q := quirkClient{ID: c.ID, Addr: c.Addr, FD: c.FD, Name: &c.Name, Cmd: &c.Cmd,
			Age: strconv.FormatInt(c.Age, 10), Idle: strconv.FormatInt(c.Idle, 10), DB: db, Flags: c.Flags,
			Sub: c.Sub, Psub: c.Psub, Multi: c.Multi, Qbuf: c.Qbuf, QbufFree: c.QbufFree, Obl: c.Obl,
			Oll: c.Oll, Omem: c.Omem, Events: c.Events, Network: &c.Network, Peer: &c.Peer, User: &c.User,
			TotMem: 22000 + c.Omem + c.Qbuf, ArgvMem: 10, Resp: 2}
		if c.Name == "" && id%2 == 0 {
			q.Name = nil
		}
		if id%5 == 0 {
			q.Network = nil
		}
		if id%7 == 0 {
			q.Peer = nil
		}
		if id%11 == 0 {
			q.User, q.Cmd = nil, nil
		}
		out[i] = q
	}
	return out
}
