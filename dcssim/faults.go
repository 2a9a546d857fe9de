package dcssim

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// Operation names, as used by Stats, Faults.Ops and the logs. They are the
// GoSDK method names, except ListLogicalNodes (GoSDK: ShowNodesInformation)
// and CreateToken (the IAM password-token call).
const (
	OpScanClients      = "ScanClients"
	OpListClients      = "ListClients"
	OpShowJobInfo      = "ShowJobInfo"
	OpListInstances    = "ListInstances"
	OpShowInstance     = "ShowInstance"
	OpListLogicalNodes = "ListLogicalNodes"
	OpCreateToken      = "CreateToken"
)

// Operations lists every operation name the simulator serves.
var Operations = []string{OpScanClients, OpListClients, OpShowJobInfo, OpListInstances,
	OpShowInstance, OpListLogicalNodes, OpCreateToken}

// Duration is a time.Duration that reads and writes JSON and YAML as a Go
// duration string such as "1.5s" or "250ms".
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string ("2s", "0").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"2s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalText lets YAML decode "2s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// DefaultFailReason is the fail_reason of a failed scan job when
// Faults.FailReason is empty.
const DefaultFailReason = "Failed to query the session list of the node."

// Faults are injectable misbehaviours. The zero value injects nothing.
// Random choices come from the simulator's seeded generator.
type Faults struct {
	// Ops limits the request faults (throttling, errors, latency, bodies) to
	// these operation names; empty means every DCS operation (CreateToken,
	// the IAM call, only when listed explicitly). Job faults are not limited.
	Ops []string `json:"ops,omitempty"`

	// RateLimit is the gateway's limit in requests per second across the
	// matching operations (token bucket on Config.Now); 0 disables. Above it:
	// 429 APIGW.0308.
	RateLimit float64 `json:"rate_limit,omitempty"`
	// RateBurst is the bucket size; 0 means ceil(RateLimit).
	RateBurst int `json:"rate_burst,omitempty"`
	// RetryAfter, if > 0, is sent as "Retry-After: <seconds>" on 429s (the
	// real gateway was never seen sending it).
	RetryAfter int `json:"retry_after,omitempty"`

	// ErrorShare (0..1) of matching requests fail with a 5xx before reaching
	// the service: a mix of 500 DCS.5000, 502 APIGW.0202 and 503 APIGW.0201.
	ErrorShare float64 `json:"error_share,omitempty"`
	// FailNext makes the next N matching requests fail with FailNextStatus;
	// it counts down and Faults() shows what is left.
	FailNext int `json:"fail_next,omitempty"`
	// FailNextStatus is 500 (DCS.5000, the default when 0), 502 or 503.
	FailNextStatus int `json:"fail_next_status,omitempty"`
	// Latency is added to every matching request (real time, not Config.Now).
	Latency Duration `json:"latency,omitempty"`
	// TruncateShare (0..1) of matching responses are cut in half while
	// Content-Length announces the full length: the client sees an
	// unexpected EOF. The request itself takes effect.
	TruncateShare float64 `json:"truncate_share,omitempty"`
	// MalformedShare (0..1) of matching responses keep their status but get
	// an HTML body (Content-Type text/html) instead of JSON. The request
	// itself takes effect.
	MalformedShare float64 `json:"malformed_share,omitempty"`

	// JobDuration, if > 0, overrides every other job duration (slow jobs).
	JobDuration Duration `json:"job_duration,omitempty"`
	// FailShare (0..1) of new scan jobs end FAIL, with FailReason.
	FailShare float64 `json:"fail_share,omitempty"`
	// FailReason is the fail_reason of failed jobs; default DefaultFailReason.
	FailReason string `json:"fail_reason,omitempty"`
	// JobsUnknown makes GET /jobs/{id} answer 404 DCS.5101 for scan jobs,
	// while scans still complete and ListClients works (unconfirmed real
	// behaviour: the scan job might not be visible to the job API).
	JobsUnknown bool `json:"jobs_unknown,omitempty"`
}

// Validate reports the first out-of-range field.
func (f Faults) Validate() error {
	for _, op := range f.Ops {
		if !slices.Contains(Operations, op) {
			return fmt.Errorf("ops: unknown operation %q (known: %v)", op, Operations)
		}
	}
	shares := []struct {
		name string
		v    float64
	}{{"error_share", f.ErrorShare}, {"truncate_share", f.TruncateShare},
		{"malformed_share", f.MalformedShare}, {"fail_share", f.FailShare}}
	for _, s := range shares {
		if s.v < 0 || s.v > 1 || math.IsNaN(s.v) {
			return fmt.Errorf("%s %v is outside 0..1", s.name, s.v)
		}
	}
	switch {
	case f.RateLimit < 0 || math.IsNaN(f.RateLimit) || math.IsInf(f.RateLimit, 0):
		return fmt.Errorf("rate_limit %v must be a finite number >= 0", f.RateLimit)
	case f.RateBurst < 0:
		return fmt.Errorf("rate_burst %d is negative", f.RateBurst)
	case f.RetryAfter < 0:
		return fmt.Errorf("retry_after %d is negative", f.RetryAfter)
	case f.FailNext < 0:
		return fmt.Errorf("fail_next %d is negative", f.FailNext)
	case f.FailNextStatus != 0 && f.FailNextStatus != 500 && f.FailNextStatus != 502 && f.FailNextStatus != 503:
		return fmt.Errorf("fail_next_status %d is not 500, 502 or 503", f.FailNextStatus)
	case f.Latency < 0:
		return fmt.Errorf("latency %v is negative", time.Duration(f.Latency))
	case f.JobDuration < 0:
		return fmt.Errorf("job_duration %v is negative", time.Duration(f.JobDuration))
	}
	return nil
}

func (f Faults) clone() Faults {
	f.Ops = slices.Clone(f.Ops)
	return f
}

// applies reports whether request faults apply to op.
func (f Faults) applies(op string) bool {
	if len(f.Ops) == 0 {
		return op != OpCreateToken
	}
	return slices.Contains(f.Ops, op)
}

// bucket is a token bucket on the simulator clock.
type bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func (b *bucket) configure(rate float64, burst int) {
	if burst <= 0 {
		burst = int(math.Ceil(rate))
	}
	if burst < 1 {
		burst = 1
	}
	*b = bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *bucket) allow(now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}
