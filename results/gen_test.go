package results

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// genClients makes a realistic session list of n sessions, in the order
// CLIENT LIST gives it (connection order: ids increasing with gaps, ages not
// increasing): a few application subnets, pools of connections per app host
// (some hosts with hundreds), names like "orders-api-3" or empty, the usual
// commands, idle mostly small with some hours, db mostly "0", ACL users.
func genClients(n int, seed uint64) []dcsapi.ClientInfo {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type app struct {
		name   string
		subnet string
		hosts  int
		user   string
		pubsub bool
	}
	apps := []app{
		{"orders-api", "10.12.3.", 12, "default", false},
		{"payments-worker", "10.12.4.", 6, "app_rw", false},
		{"catalog", "10.12.5.", 20, "app_ro", false},
		{"session-svc", "172.16.8.", 8, "default", false},
		{"notifier", "172.16.9.", 4, "default", true},
		{"cron-jobs", "192.168.20.", 3, "default", false},
		{"", "192.168.30.", 40, "default", false}, // unnamed scripts and tools
		{"monitor", "10.0.0.", 2, "monitor", false},
	}
	type host struct {
		ip     string
		app    *app
		weight int
		start  int64 // seconds before now when the app instance started
	}
	var hosts []host
	for ai := range apps {
		a := &apps[ai]
		for h := 0; h < a.hosts; h++ {
			w := 1 + rng.IntN(10)
			if rng.IntN(8) == 0 {
				w = 40 + rng.IntN(60) // a big pool
			}
			ip := a.subnet + strconv.Itoa(10+h*3+rng.IntN(3))
			if a.name == "session-svc" && h == 0 {
				ip = "[fd00:12::" + strconv.Itoa(h+1) + "]" // one IPv6 client host
			}
			hosts = append(hosts, host{ip: ip, app: a, weight: w, start: int64(rng.IntN(30 * 86400))})
		}
	}
	total := 0
	for _, h := range hosts {
		total += h.weight
	}
	cmds := []string{"get", "get", "get", "set", "set", "hgetall", "ping", "ping", "ping", "client", "NULL", "NULL", "mget", "evalsha", "expire", "del"}
	type conn struct {
		dcsapi.ClientInfo
		connected int64 // seconds before now
	}
	conns := make([]conn, n)
	for i := range conns {
		k := rng.IntN(total)
		var h *host
		for j := range hosts {
			if k < hosts[j].weight {
				h = &hosts[j]
				break
			}
			k -= hosts[j].weight
		}
		c := &conns[i]
		// Most connections date from the app instance start, some reconnected since.
		c.connected = h.start
		if rng.IntN(4) == 0 {
			c.connected = rng.Int64N(h.start + 1)
		}
		c.Addr = h.ip + ":" + strconv.Itoa(1024+rng.IntN(65536-1024))
		if h.app.name != "" && rng.IntN(5) != 0 {
			c.Name = h.app.name + "-" + strconv.Itoa(rng.IntN(8))
		}
		c.Cmd = cmds[rng.IntN(len(cmds))]
		c.DB = "0"
		if rng.IntN(20) == 0 {
			c.DB = strconv.Itoa(1 + rng.IntN(3))
		}
		c.Flags = "N"
		c.Multi = -1
		c.Events = "r"
		c.Network = "ipv4"
		if c.Addr[0] == '[' {
			c.Network = "ipv6"
		}
		c.Peer = "192.168.0.10:6379"
		c.User = h.app.user
		if h.app.pubsub && rng.IntN(2) == 0 {
			c.Cmd = "subscribe"
			c.Flags = "P"
			c.Sub = 1 + int64(rng.IntN(3))
			c.Psub = int64(rng.IntN(2))
		}
		switch r := rng.IntN(20); {
		case r < 15:
			c.Idle = int64(rng.IntN(10))
		case r < 19:
			c.Idle = int64(rng.IntN(600))
		default:
			c.Idle = int64(rng.IntN(6 * 3600))
		}
		c.Idle = min(c.Idle, c.connected)
		if rng.IntN(3) == 0 {
			c.Qbuf = 26
		}
		switch rng.IntN(10) {
		case 0:
			c.QbufFree = 20474 + int64(rng.IntN(32768-20474))
		case 1, 2, 3:
			c.QbufFree = 20474 - c.Qbuf
		default:
			c.QbufFree = 32768 - c.Qbuf
		}
		if rng.IntN(200) == 0 {
			c.Obl, c.Oll, c.Omem = int64(rng.IntN(16384)), int64(rng.IntN(3)), int64(rng.IntN(1<<20))
		}
	}
	slices.SortStableFunc(conns, func(a, b conn) int { return int(b.connected - a.connected) })
	id := int64(1000 + rng.IntN(5000))
	out := make([]dcsapi.ClientInfo, n)
	for i := range conns {
		id += 1 + int64(rng.IntN(40))
		c := conns[i].ClientInfo
		c.ID = strconv.FormatInt(id, 10)
		c.FD = strconv.Itoa(8 + rng.IntN(n+n/4+16))
		c.Age = conns[i].connected
		out[i] = c
	}
	return out
}

// churn returns cur: prev without about 2% of its sessions and with as many
// new ones (so the same length) (higher ids), ages advanced by dt seconds.
func churn(prev []dcsapi.ClientInfo, dt int64, seed uint64) []dcsapi.ClientInfo {
	rng := rand.New(rand.NewPCG(seed, 7))
	cur := make([]dcsapi.ClientInfo, 0, len(prev))
	for _, c := range prev {
		if rng.IntN(50) == 0 {
			continue
		}
		c.Age += dt
		cur = append(cur, c)
	}
	fresh := genClients(len(prev)-len(cur), seed+1)
	lastID := int64(0)
	if len(prev) > 0 {
		lastID, _ = strconv.ParseInt(prev[len(prev)-1].ID, 10, 64)
	}
	for i, c := range fresh {
		c.ID = strconv.FormatInt(lastID+int64(i)*3+1, 10)
		c.Age = int64(rng.IntN(int(dt) + 1))
		c.Idle = min(c.Idle, c.Age)
		cur = append(cur, c)
	}
	return cur
}

var genBase = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

// genSnapshot is a complete snapshot of n sessions with its summary and a
// diff against a previous list.
func genSnapshot(n int, seed uint64) *Snapshot {
	prev := genClients(n, seed)
	cur := churn(prev, 300, seed)
	if n == 0 {
		cur = []dcsapi.ClientInfo{}
	}
	id := fmt.Sprintf("req-%d-%d", n, seed)
	d := Compare(prev, cur, 0)
	d.PreviousID = "req-prev"
	d.PreviousTime = genBase.Add(-5 * time.Minute)
	return &Snapshot{
		ID: id,
		Request: Request{ID: id, InstanceID: "3b2a1c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d", NodeID: "8f7e6d5c4b3a29181716151413121110",
			CleanCache: true, Origin: OriginSchedule, RequestedAt: genBase.Add(-20 * time.Second)},
		Job: Job{ID: "ff80808190a1b2c3", Status: "SUCCESS", BeginTime: genBase.Add(-18 * time.Second),
			EndTime: genBase.Add(-3 * time.Second), CompletionPath: CompletedByShowJob, Polls: 4},
		DCSTime:    genBase.Add(-2 * time.Second).Truncate(time.Second),
		DCSTimeRaw: "2025-03-14T09:26:51Z",
		FetchedAt:  genBase,
		Count:      len(cur),
		Clients:    cur,
		Summary:    Summarize(cur, SummaryOptions{}),
		Diff:       &d,
	}
}
