package testredis

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels monitor.
const MasterName = "mymaster"

// SentinelGroup is a master, a replica and one or more sentinels, owned by a
// test. Both data servers persist like Start's (AOF, fsync always) and have
// repl-diskless-sync-delay 0, so a (re)sync starts at once. The sentinels use
// down-after-milliseconds 1000 and failover-timeout 5000.
//
// Lost writes. Replication is asynchronous: in a real crash of the master the
// writes it acknowledged but had not yet sent to the replica are lost, and
// neither asynq nor this project calls WAIT. min-replicas-to-write would not
// prevent that (it only refuses writes when the replica is gone or lags by
// seconds) and, set on both servers, would make the promoted master refuse
// every write until the old one has rejoined as its replica. So it is not set.
// Failover instead is a coordinated failover, like Redis' own FAILOVER command
// or CLUSTER FAILOVER: writes on the master are paused, the replica catches
// up to the master's replication offset, Sentinel promotes it, the old master
// is made a replica of the new one and only then un-paused. Commands that were
// held by the pause then fail with READONLY (go-redis retries them on the new
// master) or were cut by go-redis when Sentinel announced the switch; none of
// them ran on the old master, and every acknowledged write is on the new one.
type SentinelGroup struct {
	t testing.TB
	// Data holds the two data servers: Data[0] starts as master, Data[1] as
	// its replica. After a Failover their roles are swapped.
	Data      []*Server
	Sentinels []*Server
}

// StartSentinel starts a master, its replica and one sentinel (quorum 1)
// and waits until the replica is in sync and the sentinel knows it (under a
// second).
func StartSentinel(t testing.TB) *SentinelGroup { return StartSentinels(t, 1) }

// StartSentinels is StartSentinel with n sentinels and quorum n/2+1; with
// several it also waits until every sentinel has discovered the others
// (hello messages every 2 s, so this takes a few seconds).
func StartSentinels(t testing.TB, n int) *SentinelGroup {
	t.Helper()
	g := &SentinelGroup{t: t}
	sync := []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}
	master := Start(t, sync...)
	replica := Start(t, append(sync, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))...)
	g.Data = []*Server{master, replica}
	ctx := context.Background()
	waitFor(t, 15*time.Second, "the replica in sync", func() (bool, string) {
		info := infoOf(ctx, master.Addr(), "replication")
		return strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online"), info
	})
	for range n {
		g.Sentinels = append(g.Sentinels, startSentinel(t, master.Port, n/2+1))
	}
	for _, s := range g.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		waitFor(t, 15*time.Second, "sentinel "+s.Addr()+" to know the replica and the other sentinels", func() (bool, string) {
			reps, err := c.Replicas(ctx, MasterName).Result()
			m, err2 := c.Master(ctx, MasterName).Result()
			ok := err == nil && err2 == nil && len(reps) == 1 && reps[0]["flags"] == "slave" &&
				reps[0]["master-link-status"] == "ok" && m["num-other-sentinels"] == strconv.Itoa(n-1)
			return ok, fmt.Sprintf("replicas %v (%v), master %v (%v)", reps, err, m, err2)
		})
		c.Close()
	}
	return g
}

func startSentinel(t testing.TB, masterPort, quorum int) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed: %v", err)
	}
	s := &Server{t: t, Port: FreePort(t), Dir: t.TempDir()}
	conf := filepath.Join(s.Dir, "sentinel.conf")
	body := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d %d
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 5000
sentinel parallel-syncs %s 1
`, s.Port, s.Dir, filepath.Join(s.Dir, "redis.log"), MasterName, masterPort, quorum, MasterName, MasterName, MasterName)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s.args = []string{conf, "--sentinel"}
	s.cmd = exec.Command(bin, s.args...)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the REDIS_URL of the group: redis-sentinel://s1:port[,s2:port...]/mymaster.
func (g *SentinelGroup) URL() string {
	addrs := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		addrs[i] = s.Addr()
	}
	return "redis-sentinel://" + strings.Join(addrs, ",") + "/" + MasterName
}

// Client returns a Sentinel-aware client of the master, closed at the end of
// the test.
func (g *SentinelGroup) Client() *redis.Client {
	addrs := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		addrs[i] = s.Addr()
	}
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: MasterName, SentinelAddrs: addrs})
	g.t.Cleanup(func() { c.Close() })
	return c
}

// MasterAddr is the master's host:port as the first sentinel reports it.
func (g *SentinelGroup) MasterAddr() string {
	g.t.Helper()
	c := redis.NewSentinelClient(&redis.Options{Addr: g.Sentinels[0].Addr()})
	defer c.Close()
	a, err := c.GetMasterAddrByName(context.Background(), MasterName).Result()
	if err != nil || len(a) != 2 {
		g.t.Fatalf("sentinel: master address: %v %v", a, err)
	}
	return net.JoinHostPort(a[0], a[1])
}

// Master is the data server that is master now.
func (g *SentinelGroup) Master() *Server { return g.server(g.MasterAddr()) }

func (g *SentinelGroup) server(addr string) *Server {
	g.t.Helper()
	for _, s := range g.Data {
		if s.Addr() == addr {
			return s
		}
	}
	g.t.Fatalf("sentinel: master %s is none of the data servers", addr)
	return nil
}

// Failover makes the replica the master through SENTINEL FAILOVER, without
// losing an acknowledged write (see SentinelGroup), and returns once every
// sentinel reports the new master, it answers ROLE as master, and the old
// master replicates from it. It returns the new master. It takes about
// 1-2 s, during which writes are held (not refused).
func (g *SentinelGroup) Failover() *Server {
	g.t.Helper()
	ctx := context.Background()
	old := g.Master()
	var next *Server
	for _, s := range g.Data {
		if s != old {
			next = s
		}
	}
	oc := redis.NewClient(&redis.Options{Addr: old.Addr(), MaxRetries: -1})
	defer oc.Close()
	// 1. Hold writes on the master (also expiry and eviction).
	if err := oc.Do(ctx, "CLIENT", "PAUSE", 30000, "WRITE").Err(); err != nil {
		g.t.Fatalf("failover: CLIENT PAUSE on %s: %v", old.Addr(), err)
	}
	paused := true
	defer func() {
		if paused {
			_ = oc.Do(ctx, "CLIENT", "UNPAUSE").Err()
		}
	}()
	// 2. Wait until the replica has every write the master acknowledged.
	waitFor(g.t, 10*time.Second, "the replica to catch up", func() (bool, string) {
		info := infoOf(ctx, old.Addr(), "replication")
		mo, so := replOffsets(info)
		return mo > 0 && so >= mo, info
	})
	// 3. Promote it.
	sc := redis.NewSentinelClient(&redis.Options{Addr: g.Sentinels[0].Addr()})
	defer sc.Close()
	if err := sc.Failover(ctx, MasterName).Err(); err != nil {
		g.t.Fatalf("failover: SENTINEL FAILOVER %s: %v", MasterName, err)
	}
	waitFor(g.t, 15*time.Second, "the sentinels to report the new master", func() (bool, string) {
		for _, s := range g.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
			a, err := c.GetMasterAddrByName(ctx, MasterName).Result()
			c.Close()
			if err != nil || len(a) != 2 || net.JoinHostPort(a[0], a[1]) != next.Addr() {
				return false, fmt.Sprintf("sentinel %s says %v (%v)", s.Addr(), a, err)
			}
		}
		role := roleOf(ctx, next.Addr())
		return role == "master", fmt.Sprintf("%s has role %q", next.Addr(), role)
	})
	// 4. Demote the old master before releasing the held writes: they then
	// fail with READONLY instead of landing on a server about to be resynced.
	if err := oc.Do(ctx, "REPLICAOF", "127.0.0.1", strconv.Itoa(next.Port)).Err(); err != nil {
		g.t.Fatalf("failover: REPLICAOF on the old master %s: %v", old.Addr(), err)
	}
	paused = false
	if err := oc.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		g.t.Fatalf("failover: CLIENT UNPAUSE on %s: %v", old.Addr(), err)
	}
	waitFor(g.t, 15*time.Second, "the old master to replicate from the new one", func() (bool, string) {
		info := infoOf(ctx, old.Addr(), "replication")
		return strings.Contains(info, "master_link_status:up") &&
			strings.Contains(info, "master_port:"+strconv.Itoa(next.Port)), info
	})
	return next
}

// replOffsets parses a master's INFO replication: its offset and the lowest
// offset of its online replicas (-1 without one).
func replOffsets(info string) (master, replica int64) {
	replica = -1
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch {
		case k == "master_repl_offset":
			master, _ = strconv.ParseInt(v, 10, 64)
		case strings.HasPrefix(k, "slave") && strings.Contains(v, "state=online"):
			for _, f := range strings.Split(v, ",") {
				if o, ok := strings.CutPrefix(f, "offset="); ok {
					n, _ := strconv.ParseInt(o, 10, 64)
					if replica < 0 || n < replica {
						replica = n
					}
				}
			}
		}
	}
	return master, replica
}

func infoOf(ctx context.Context, addr, section string) string {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return "error: " + err.Error()
	}
	return s
}

func roleOf(ctx context.Context, addr string) string {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(v) == 0 {
		return ""
	}
	s, _ := v[0].(string)
	return s
}

// waitFor polls cond every 20 ms until it holds, or fails the test after d
// with cond's last description.
func waitFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, desc := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testredis: timed out after %v waiting for %s: %s", d, what, desc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
