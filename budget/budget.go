// Package budget is the DCS API budget shared by every worker: a rate limit
// kept in Redis (GCRA, via github.com/go-redis/redis_rate), one per project
// and region, so that N workers together stay under the API gateway's
// throttling instead of each running its own limiter.
package budget

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// Rate is a number of calls per period, written "20/s", "300/m" or "5000/h".
type Rate struct {
	N      int
	Period time.Duration
}

// ParseRate parses "N/s", "N/m" or "N/h" (N >= 1). "0" or "off" disables.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "0" || s == "off" || s == "" {
		return Rate{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	v, err := strconv.Atoi(n)
	if !ok || err != nil || v < 1 {
		return Rate{}, fmt.Errorf("rate %q: want N/s, N/m or N/h with N >= 1, or off", s)
	}
	p := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if p == 0 {
		return Rate{}, fmt.Errorf("rate %q: unit %q is not s, m or h", s, unit)
	}
	return Rate{N: v, Period: p}, nil
}

func (r Rate) String() string {
	if r.N == 0 {
		return "off"
	}
	u := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Period]
	return strconv.Itoa(r.N) + "/" + u
}

// Budget hands out DCS API calls.
type Budget struct {
	lim     *redis_rate.Limiter
	key     string
	limit   redis_rate.Limit
	maxWait time.Duration
	// OnWait, when set, is called with the time a call waited or was told to wait.
	OnWait func(op string, d time.Duration, heldBack bool)
}

// New returns the budget of a project and region. burst <= 0 means rate.N.
// A call waits in-process for up to maxWait; beyond that Wait returns a
// *dcsapi.ThrottleError so that the task is re-queued instead of holding a
// worker slot.
func New(rdb redis.UniversalClient, prefix, project, region string, rate Rate, burst int, maxWait time.Duration) *Budget {
	if burst <= 0 {
		burst = rate.N
	}
	return &Budget{
		lim:     redis_rate.NewLimiter(rdb),
		key:     prefix + ":budget:" + project + ":" + region,
		limit:   redis_rate.Limit{Rate: rate.N, Burst: burst, Period: rate.Period},
		maxWait: maxWait,
	}
}

// Wait takes one call from the budget; it is dcsapi.Config.Wait.
func (b *Budget) Wait(ctx context.Context, op string) error {
	var waited time.Duration
	for {
		res, err := b.lim.Allow(ctx, b.key, b.limit)
		if err != nil {
			// The caller (dcsapi) marks this as not sent, hence transient.
			return fmt.Errorf("API budget: %w", err)
		}
		if res.Allowed > 0 {
			if waited > 0 && b.OnWait != nil {
				b.OnWait(op, waited, false)
			}
			return nil
		}
		d := res.RetryAfter
		if waited+d > b.maxWait {
			if b.OnWait != nil {
				b.OnWait(op, d, true)
			}
			return &dcsapi.ThrottleError{Op: op, Delay: d, Reason: "the shared API budget (" + b.limit.String() + ")"}
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		waited += d
	}
}
