package audit

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MaxFileSize caps the config file Load reads (a config is a few KiB; a huge
// file is a mistake, such as the wrong path).
const MaxFileSize = 4 << 20

// MinEvery is the shortest "@every" schedule accepted. A DCS scan is an
// asynchronous job that takes seconds to minutes and spends the shared API
// budget; cron specs cannot go below a minute either.
//
// It is a variable only so that end-to-end tests can run audits every few
// seconds (set it in TestMain, before any config is parsed); production code
// never changes it.
var MinEvery = time.Minute

// Config is a parsed and validated audit configuration file. It is immutable
// once returned: share it, do not modify it (Watcher hands the same *Config to
// every reader).
type Config struct {
	// Audits in file order. Names are unique.
	Audits []Audit
}

// Audit is one scheduled audit: which nodes to scan, when, and the rules its
// snapshots are checked against.
type Audit struct {
	// Name is unique in the file and matches ^[a-z0-9][a-z0-9_-]{0,31}$, so
	// it is a bounded, safe metric label and key part.
	Name string
	// Instance is the DCS instance id.
	Instance string
	// Nodes are the node ids to scan; empty when AllNodes is set. Exactly one
	// of Nodes and AllNodes is given.
	Nodes []string
	// AllNodes: scan every node the API lists for the instance at each run
	// (dcsapi.Client.ScanTargets).
	AllNodes bool
	// Schedule is a 5-field cron spec ("*/15 * * * *"), a descriptor
	// (@hourly, @daily, ...) or "@every <duration>" (at least MinEvery), as
	// robfig/cron's ParseStandard and asynq's scheduler read it. An optional
	// "TZ=Area/City " prefix sets the time zone (default: the process's).
	Schedule string
	// CleanCache is the ScanClients clean_cache flag. Default false.
	CleanCache bool
	// Retention is how long this audit's snapshots are kept; 0 (the default)
	// means the worker's RETENTION.
	Retention time.Duration
	// Rules are checked against every snapshot of the audit; the zero value
	// checks nothing.
	Rules Rules
}

// Rules are an audit's checks. Each zero field is a rule that is off.
type Rules struct {
	// IdleSessions (idle_sessions): a violation when more than Max sessions
	// are idle for longer than LongerThan. Nil: off.
	IdleSessions *IdleRule
	// MaxSessionsPerClientIP (max_sessions_per_client_ip): a violation for
	// each client IP with more sessions than this. 0: off.
	MaxSessionsPerClientIP int
	// AllowedCIDRs (allowed_cidrs): a violation for every session whose
	// client IP is in none of these prefixes (IPv4 and IPv6; IPv4-mapped IPv6
	// addresses are matched as IPv4; a client addr that is not an IP, such as
	// a unix socket, is outside). Masked to their prefix length. Nil: off.
	AllowedCIDRs []netip.Prefix
	// MaxShareOfMaxClients (max_share_of_maxclients), in (0, 1]: a violation
	// when the node has more sessions than this share of its maxclients.
	// 0: off.
	MaxShareOfMaxClients float64
	// MaxClients (max_clients), only with MaxShareOfMaxClients: the limit to
	// take the share of, instead of the node's maxclients as DCS reports it.
	// 0: use the DCS value.
	MaxClients int64
	// NewClients (new_clients): report sessions present now that were absent
	// from the node's previous snapshot. False: off.
	NewClients bool
}

// IdleRule is the idle_sessions rule.
type IdleRule struct {
	// LongerThan (longer_than): a session idle for longer than this counts.
	// At least a second: DCS reports idle in whole seconds.
	LongerThan time.Duration
	// Max (max): how many such sessions are tolerated. Default 0.
	Max int
}

// Empty reports whether no rule is on.
func (r *Rules) Empty() bool {
	return r.IdleSessions == nil && r.MaxSessionsPerClientIP == 0 && len(r.AllowedCIDRs) == 0 &&
		r.MaxShareOfMaxClients == 0 && !r.NewClients
}

// Load reads and parses the file at path. Errors name the file.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("audit config %s: %w", path, err)
	}
	return c, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("audit config: read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("audit config %s: larger than %d bytes", path, MaxFileSize)
	}
	return data, nil
}

// Audit returns the audit with that name.
func (c *Config) Audit(name string) (*Audit, bool) {
	if c == nil {
		return nil, false
	}
	for i := range c.Audits {
		if c.Audits[i].Name == name {
			return &c.Audits[i], true
		}
	}
	return nil, false
}

// Covers reports whether the audit scans that node of that instance: the
// instance is the audit's and the node is listed, or AllNodes is set. Ids are
// compared without regard to case (DCS ids are lowercase UUIDs).
func (a *Audit) Covers(instanceID, nodeID string) bool {
	if a == nil || !strings.EqualFold(a.Instance, instanceID) {
		return false
	}
	if a.AllNodes {
		return true
	}
	for _, n := range a.Nodes {
		if strings.EqualFold(n, nodeID) {
			return true
		}
	}
	return false
}

// Next is the first time the audit's schedule fires after t (zero if the
// schedule cannot be parsed, which Parse has ruled out).
func (a *Audit) Next(t time.Time) time.Time {
	s, err := parseSchedule(a.Schedule)
	if err != nil {
		return time.Time{}
	}
	return s.Next(t)
}

// parseSchedule parses a schedule as asynq's scheduler does (robfig/cron's
// standard parser), and rejects what it would accept but should not run:
// "@every" below MinEvery and specs that never fire.
func parseSchedule(spec string) (s cron.Schedule, err error) {
	defer func() {
		// robfig/cron v3.0.1 panics on some malformed TZ= prefixes.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("cannot be parsed (%v); a time zone is written \"TZ=Area/City <spec>\"", r)
		}
	}()
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("is empty")
	}
	s, err = cron.ParseStandard(spec)
	if err != nil {
		return nil, err
	}
	if d, ok := s.(cron.ConstantDelaySchedule); ok {
		if d.Delay < MinEvery {
			return nil, fmt.Errorf("interval %s is below the minimum %s", d.Delay, MinEvery)
		}
		return s, nil
	}
	if s.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("never fires")
	}
	return s, nil
}
