package testredis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/internal/testredis"
	"github.com/dcsjobs/dcsjobs/redisurl"
)

func TestClusterStartsAndSpreadsSlots(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := testredis.StartCluster(t, 3)
	t.Logf("3-master cluster ready in %v", time.Since(start))
	p, err := redisurl.Parse(c.URL())
	if err != nil || p.Kind != redisurl.Cluster || len(p.Options.Addrs) != 3 {
		t.Fatalf("URL %s: %+v %v", c.URL(), p, err)
	}
	rdb := p.NewClient()
	defer rdb.Close()
	ctx := context.Background()
	for i := range 300 {
		if err := rdb.Set(ctx, fmt.Sprintf("k:{%d}", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	per, err := c.KeysPerMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range per {
		if n < 50 {
			t.Errorf("master %d holds %d of 300 keys: slots not spread", i, n)
		}
	}
	if keys, _ := c.Keys(ctx, "k:*"); len(keys) != 300 {
		t.Errorf("Keys found %d of 300", len(keys))
	}
	// The cluster is real: a multi-key command across slots is refused, one
	// within a hash tag is not.
	if err := rdb.Do(ctx, "MSET", "{a}x", 1, "{b}y", 2).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("MSET across slots: %v, want CROSSSLOT", err)
	}
	if err := rdb.MSet(ctx, "{a}x", 1, "{a}y", 2).Err(); err != nil {
		t.Errorf("MSET within a tag: %v", err)
	}
}

func TestSentinelFailoverKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	start := time.Now()
	g := testredis.StartSentinel(t)
	t.Logf("master + replica + sentinel ready in %v", time.Since(start))
	p, err := redisurl.Parse(g.URL())
	if err != nil || p.Kind != redisurl.Sentinel {
		t.Fatalf("URL %s: %+v %v", g.URL(), p, err)
	}
	rdb := p.NewClient()
	defer rdb.Close()
	ctx := context.Background()
	old := g.Master()
	// Writers INCR counters while the master fails over; every INCR that was
	// acknowledged must be in the new master's value.
	var acked [4]atomic.Int64
	var failedWrites atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range acked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := rdb.Incr(ctx, fmt.Sprintf("c%d", w)).Err(); err != nil {
					failedWrites.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				acked[w].Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	fo := time.Now()
	next := g.Failover()
	t.Logf("failover in %v", time.Since(fo))
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if next == old || g.Master() != next {
		t.Fatalf("master still %s", g.Master())
	}
	nc := redis.NewClient(&redis.Options{Addr: next.Addr()})
	defer nc.Close()
	for w := range acked {
		got, err := nc.Get(ctx, fmt.Sprintf("c%d", w)).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		// A write whose reply was lost may have been applied: got >= acked.
		if a := acked[w].Load(); got < a {
			t.Errorf("counter c%d: %d on the new master, %d increments acknowledged: writes lost", w, got, a)
		}
	}
	t.Logf("acknowledged %d/%d/%d/%d increments, %d write errors", acked[0].Load(), acked[1].Load(),
		acked[2].Load(), acked[3].Load(), failedWrites.Load())
	// And the group can fail back.
	if back := g.Failover(); back != old {
		t.Fatalf("fail back: master %s", back)
	}
}

func TestSentinelsThreeAgreeAfterFailover(t *testing.T) {
	t.Parallel()
	g := testredis.StartSentinels(t, 3)
	rdb := g.Client()
	ctx := context.Background()
	if err := rdb.Set(ctx, "before", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	old := g.Master()
	// Failover returns once all three sentinels name the new master.
	if next := g.Failover(); next == old {
		t.Fatal("no failover")
	}
	if v, err := rdb.Get(ctx, "before").Int(); err != nil || v != 1 {
		t.Fatalf("after the failover: %v %v", v, err)
	}
	if err := rdb.Set(ctx, "after", 1, 0).Err(); err != nil {
		t.Fatalf("write after the failover: %v", err)
	}
}
