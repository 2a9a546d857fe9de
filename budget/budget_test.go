package budget

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Rate{"20/s": {20, time.Second}, "300/m": {300, time.Minute}, "1/h": {1, time.Hour}, "off": {}, "0": {}} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"20", "x/s", "0/s", "-1/s", "5/d"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

// Several "workers" (separate clients) share one budget: over a window the
// calls let through stay within rate·window + burst.
func TestBudgetIsSharedAcrossClients(t *testing.T) {
	t.Parallel()
	prefix := fmt.Sprintf("test:budget:%d", rand.Int64())
	const workers = 4
	var allowed, held atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(1500 * time.Millisecond)
	for range workers {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() { rdb.Close() })
		b := New(rdb, prefix, "p", "r", Rate{N: 10, Period: time.Second}, 5, 200*time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				err := b.Wait(context.Background(), "ShowJobInfo")
				switch {
				case err == nil:
					allowed.Add(1)
				case dcsapi.IsThrottled(err):
					held.Add(1)
					time.Sleep(20 * time.Millisecond)
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	rdb.Del(context.Background(), prefix+":budget:p:r")
	// 1.5 s at 10/s plus a burst of 5, with slack for the last wait: at most 21.
	if a := allowed.Load(); a < 10 || a > 21 {
		t.Errorf("%d calls allowed in 1.5s at 10/s burst 5 across %d clients", a, workers)
	}
	if held.Load() == 0 {
		t.Error("no call was held back")
	}
}

func TestThrottleErrorCarriesDelay(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	prefix := fmt.Sprintf("test:budget:%d", rand.Int64())
	defer rdb.Del(context.Background(), prefix+":budget:p:r")
	var heldOps []string
	b := New(rdb, prefix, "p", "r", Rate{N: 1, Period: time.Minute}, 1, 0)
	b.OnWait = func(op string, d time.Duration, held bool) {
		if held {
			heldOps = append(heldOps, op)
		}
	}
	if err := b.Wait(context.Background(), "ScanClients"); err != nil {
		t.Fatal(err)
	}
	err := b.Wait(context.Background(), "ScanClients")
	d, ok := dcsapi.RetryAfter(err)
	if !dcsapi.IsThrottled(err) || !ok || d < 50*time.Second || d > time.Minute {
		t.Fatalf("second call: %v (retry after %v)", err, d)
	}
	if len(heldOps) != 1 || heldOps[0] != "ScanClients" {
		t.Errorf("OnWait saw %v", heldOps)
	}
}
