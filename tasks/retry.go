package tasks

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
)

// throttledError asks asynq to run the task again after Delay without
// counting a failure (IsFailure is false for it).
type throttledError struct {
	Delay time.Duration
	Err   error
}

func (e *throttledError) Error() string {
	return fmt.Sprintf("throttled, retry in %v: %v", e.Delay, e.Err)
}
func (e *throttledError) Unwrap() error { return e.Err }

// IsFailure is the asynq Config.IsFailure of the worker: throttling is not a
// failure, so it neither uses up retries nor counts in asynq's failed stats.
func IsFailure(err error) bool {
	var te *throttledError
	return !errors.As(err, &te)
}

// Backoff is the retry policy of transient errors.
type Backoff struct {
	// Base is the first delay (default 2s); each retry doubles it.
	Base time.Duration
	// Max caps a delay (default 2m).
	Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = 2 * time.Second
	}
	if b.Max <= 0 {
		b.Max = 2 * time.Minute
	}
	return b
}

// Delay returns the delay before retry n (0-based): Base·2ⁿ capped at Max,
// with "equal jitter" (a random value in [d/2, d]) so that workers that failed
// together do not retry together.
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	d := b.Max
	if n < 30 {
		if e := b.Base << n; e > 0 && e < b.Max {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(half+1)
}

// RetryDelayFunc returns the asynq Config.RetryDelayFunc of the worker:
// throttled tasks wait the advised delay (at least 1s, asynq's resolution),
// other errors back off exponentially.
func RetryDelayFunc(b Backoff) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var te *throttledError
		if errors.As(err, &te) {
			return max(te.Delay, time.Second)
		}
		return b.Delay(n)
	}
}

// PollSchedule is when follow-up polls run: the first check First after the
// scan (default 0: at once, so a fast job is seen without delay), the second
// Next later (default 1s), and each later wait Factor times the previous
// (default 1.5), up to Max (default 30s). asynq schedules in whole seconds.
type PollSchedule struct {
	First  time.Duration
	Next   time.Duration
	Factor float64
	Max    time.Duration
}

func (s PollSchedule) withDefaults() PollSchedule {
	if s.First < 0 {
		s.First = 0
	}
	if s.Next <= 0 {
		s.Next = time.Second
	}
	if s.Factor < 1 {
		s.Factor = 1.5
	}
	if s.Max <= 0 {
		s.Max = 30 * time.Second
	}
	if s.Max < s.Next {
		s.Max = s.Next
	}
	return s
}

// Delay returns the wait before poll n (1-based).
func (s PollSchedule) Delay(n int) time.Duration {
	s = s.withDefaults()
	if n <= 1 {
		return min(s.First, s.Max)
	}
	d := float64(s.Next)
	for i := 2; i < n && d < float64(s.Max); i++ {
		d *= s.Factor
	}
	return min(time.Duration(d), s.Max)
}
