package dcssim

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Demo credentials and defaults. They belong to the simulator only and may be
// printed freely.
const (
	// DefaultProjectID is the project served when Config.ProjectID is empty.
	DefaultProjectID = "0123456789abcdef0123456789abcdef"
	// DefaultProjectName is the IAM project (region) name accepted in token
	// scopes when Config.ProjectName is empty.
	DefaultProjectName = "ap-southeast-1"
	// DefaultAK and DefaultSK are the AK/SK pair served when no credential of
	// any kind is configured and auth is not disabled.
	DefaultAK = "DCSSIMDEMOACCESSKEY0"
	DefaultSK = "dcssim-demo-secret-key-0000000000000000"
	// DefaultJobDuration is how long a scan job takes when nothing else says.
	DefaultJobDuration = 2 * time.Second
	// DefaultTokenTTL is the lifetime of IAM tokens, as on the real IAM.
	DefaultTokenTTL = 24 * time.Hour
)

// Time formats for the ListClients "time" field, whose real format is
// unconfirmed.
const (
	TimeRFC3339  = "rfc3339"  // 2026-11-28T10:00:00.123Z (default)
	TimeEpochMS  = "epoch-ms" // "1795860000123"
	TimeDateTime = "datetime" // 2026-11-28 10:00:00 (UTC)
)

// User is an IAM user that may obtain a token with the password method.
type User struct {
	Domain   string `json:"domain" yaml:"domain"`
	Name     string `json:"name" yaml:"name"`
	Password string `json:"password" yaml:"password"`
}

// Config configures a Server. The zero value is usable: it serves
// DefaultInventory under DefaultProjectID with the DefaultAK/DefaultSK pair.
type Config struct {
	// ProjectID is the only project the simulator serves; any other project
	// ID in a path answers 401 DCS.1004. Default DefaultProjectID. Must be 32
	// lower-case hex characters, like a real IAM project ID.
	ProjectID string
	// ProjectName is the project (region) name accepted in IAM token scopes,
	// besides ProjectID. Default DefaultProjectName.
	ProjectName string

	// AccessKeys maps AK → SK for SDK-HMAC-SHA256 signed requests. When
	// AccessKeys, Tokens and Users are all empty and AuthDisabled is false,
	// it defaults to {DefaultAK: DefaultSK}; an explicitly empty non-nil map
	// keeps AK/SK auth off.
	AccessKeys map[string]string
	// SecurityTokens marks some AKs as temporary credentials: a request
	// signed with such an AK must carry exactly this value in
	// X-Security-Token, else 401 APIGW.0301.
	SecurityTokens map[string]string
	// Tokens are static X-Auth-Token values that are always valid (until
	// ExpireTokens; Reset revives them).
	Tokens []string
	// Users may obtain tokens from POST /v3/auth/tokens.
	Users []User
	// TokenTTL is the lifetime of issued tokens. Default DefaultTokenTTL.
	TokenTTL time.Duration
	// AuthDisabled skips all authentication (for quick demos with curl).
	// Hazard: a client that signs wrongly passes too.
	AuthDisabled bool

	// Inventory is the set of instances served; nil means DefaultInventory().
	// It is validated and copied by New.
	Inventory *Inventory
	// Seed makes job IDs, sessions, job failures and fault choices
	// reproducible. 0 is a valid seed.
	Seed uint64
	// JobDuration is how long a scan job takes: the first quarter INIT, then
	// RUNNING, then SUCCESS or FAIL. Default DefaultJobDuration; a node's own
	// job_duration and Faults.JobDuration take precedence.
	JobDuration time.Duration
	// FailShare (0..1) is the share of scan jobs that end FAIL. It seeds
	// Faults.FailShare when that is zero.
	FailShare float64
	// Faults are the faults in force at start and after Reset.
	Faults Faults
	// TimeFormat is the format of ListClients "time": TimeRFC3339 (default),
	// TimeEpochMS or TimeDateTime.
	TimeFormat string
	// Quirks makes ListClients answer like older or sloppier API versions:
	// idle/age as JSON strings, db as a number, some fields null and extra
	// unknown fields, so clients prove they decode tolerantly.
	Quirks bool
	// Now is the clock. Default time.Now. Everything time-dependent reads it.
	Now func() time.Time
	// Logger, if set, gets one line per request (never credentials).
	Logger *slog.Logger
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (c *Config) withDefaults() (Config, error) {
	out := *c
	if out.ProjectID == "" {
		out.ProjectID = DefaultProjectID
	}
	if !hex32.MatchString(out.ProjectID) {
		return out, fmt.Errorf("dcssim: Config.ProjectID %q is not 32 lower-case hex characters", out.ProjectID)
	}
	if out.ProjectName == "" {
		out.ProjectName = DefaultProjectName
	}
	if out.AccessKeys == nil && len(out.Tokens) == 0 && len(out.Users) == 0 && !out.AuthDisabled {
		out.AccessKeys = map[string]string{DefaultAK: DefaultSK}
	}
	for ak, sk := range out.AccessKeys {
		if ak == "" || sk == "" {
			return out, fmt.Errorf("dcssim: Config.AccessKeys: empty AK or SK for AK %q", ak)
		}
	}
	for ak := range out.SecurityTokens {
		if _, ok := out.AccessKeys[ak]; !ok {
			return out, fmt.Errorf("dcssim: Config.SecurityTokens: AK %q is not in AccessKeys", ak)
		}
	}
	for i, u := range out.Users {
		if u.Domain == "" || u.Name == "" || u.Password == "" {
			return out, fmt.Errorf("dcssim: Config.Users[%d]: domain, name and password are required", i)
		}
	}
	if out.TokenTTL == 0 {
		out.TokenTTL = DefaultTokenTTL
	}
	if out.TokenTTL < 0 {
		return out, fmt.Errorf("dcssim: Config.TokenTTL %v is negative", out.TokenTTL)
	}
	if out.JobDuration == 0 {
		out.JobDuration = DefaultJobDuration
	}
	if out.JobDuration < 0 {
		return out, fmt.Errorf("dcssim: Config.JobDuration %v is negative", out.JobDuration)
	}
	if out.FailShare < 0 || out.FailShare > 1 {
		return out, fmt.Errorf("dcssim: Config.FailShare %v is outside 0..1", out.FailShare)
	}
	if out.Faults.FailShare == 0 {
		out.Faults.FailShare = out.FailShare
	}
	if err := out.Faults.Validate(); err != nil {
		return out, fmt.Errorf("dcssim: Config.Faults: %w", err)
	}
	switch out.TimeFormat {
	case "":
		out.TimeFormat = TimeRFC3339
	case TimeRFC3339, TimeEpochMS, TimeDateTime:
	default:
		return out, fmt.Errorf("dcssim: Config.TimeFormat %q is not one of %s, %s, %s",
			out.TimeFormat, TimeRFC3339, TimeEpochMS, TimeDateTime)
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.Inventory == nil {
		out.Inventory = DefaultInventory()
	} else {
		out.Inventory = out.Inventory.clone()
	}
	if err := out.Inventory.normalize(); err != nil {
		return out, fmt.Errorf("dcssim: Config.Inventory: %w", err)
	}
	return out, nil
}

func formatListTime(format string, t time.Time) string {
	t = t.UTC()
	switch format {
	case TimeEpochMS:
		return fmt.Sprint(t.UnixMilli())
	case TimeDateTime:
		return t.Format(time.DateTime)
	default:
		return t.Format("2006-01-02T15:04:05.000Z")
	}
}
