package testredis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters only (no replicas), one
// redis-server process per master, owned by a test.
type Cluster struct {
	t       testing.TB
	Masters []*Server
}

// StartCluster starts a Redis Cluster of n masters (n >= 1; 3 is the usual
// minimum of a real deployment) on free ports, splits the 16384 slots evenly
// between them with CLUSTER ADDSLOTSRANGE, joins them with CLUSTER MEET and
// waits until every node reports cluster_state:ok and knows every other
// node. Each server has its own cluster bus port (chosen free, not port+10000)
// and nodes.conf in its temporary directory. Everything is stopped at the end
// of the test. It takes about 2.3 s, most of it Redis' own 2 s delay before a
// freshly started master declares the cluster ok (CLUSTER_WRITABLE_DELAY).
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("StartCluster: %d masters", n)
	}
	c := &Cluster{t: t}
	bus := make([]int, n)
	for i := range n {
		bus[i] = FreePort(t)
		c.Masters = append(c.Masters, Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus[i]), "--cluster-node-timeout", "5000"))
	}
	ctx := context.Background()
	clients := make([]*redis.Client, n)
	for i, s := range c.Masters {
		clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		defer clients[i].Close()
	}
	per := 16384 / n
	for i, cl := range clients {
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		if err := cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("cluster: ADDSLOTSRANGE %d %d on %s: %v", lo, hi, c.Masters[i].Addr(), err)
		}
	}
	// Every node meets every other: no waiting for gossip to spread them.
	for i := range n {
		for j := i + 1; j < n; j++ {
			if err := clients[i].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", c.Masters[j].Port, bus[j]).Err(); err != nil {
				t.Fatalf("cluster: MEET from %s: %v", c.Masters[i].Addr(), err)
			}
		}
	}

	deadline := time.Now().Add(15 * time.Second)
	for i, cl := range clients {
		for {
			info, err := cl.ClusterInfo(ctx).Result()
			nodes, err2 := cl.ClusterNodes(ctx).Result()
			if err == nil && err2 == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_slots_ok:16384") && strings.Count(strings.TrimSpace(nodes), "\n")+1 == n &&
				!strings.Contains(nodes, "handshake") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster: node %s not ready after 15s: %v %v\n%s\n%s", c.Masters[i].Addr(), err, err2, info, nodes)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

// Addrs are the masters' host:port.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Masters))
	for i, s := range c.Masters {
		out[i] = s.Addr()
	}
	return out
}

// URL is the REDIS_URL of the cluster: redis-cluster://h1:p1,h2:p2,h3:p3.
func (c *Cluster) URL() string { return "redis-cluster://" + strings.Join(c.Addrs(), ",") }

// Client returns a cluster client closed at the end of the test.
func (c *Cluster) Client() *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// Keys runs KEYS pattern on every master and returns all matches (KEYS on a
// cluster client only asks one node).
func (c *Cluster) Keys(ctx context.Context, pattern string) ([]string, error) {
	var out []string
	for _, s := range c.Masters {
		cl := redis.NewClient(&redis.Options{Addr: s.Addr()})
		keys, err := cl.Keys(ctx, pattern).Result()
		cl.Close()
		if err != nil {
			return nil, fmt.Errorf("KEYS on %s: %w", s.Addr(), err)
		}
		out = append(out, keys...)
	}
	return out, nil
}

// KeysPerMaster counts the keys of each master (DBSIZE), in Masters order.
func (c *Cluster) KeysPerMaster(ctx context.Context) ([]int64, error) {
	out := make([]int64, len(c.Masters))
	for i, s := range c.Masters {
		cl := redis.NewClient(&redis.Options{Addr: s.Addr()})
		n, err := cl.DBSize(ctx).Result()
		cl.Close()
		if err != nil {
			return nil, fmt.Errorf("DBSIZE on %s: %w", s.Addr(), err)
		}
		out[i] = n
	}
	return out, nil
}
