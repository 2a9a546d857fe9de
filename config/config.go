// Package config is the worker's configuration: flags with environment
// fallback (a flag given on the command line wins over its variable), one
// Config struct, validated at start with messages that name the field.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/dcsjobs/dcsjobs/budget"
	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/redisurl"
)

// Config is everything the worker reads at start.
type Config struct {
	RedisURL  dcsapi.Secret // may hold a password
	KeyPrefix string

	DCSEndpoint   string
	DCSRegion     string
	ProjectID     string
	AccessKey     string
	SecretKey     dcsapi.Secret
	SecurityToken dcsapi.Secret
	AuthToken     dcsapi.Secret
	IAMDomain     string
	IAMUser       string
	IAMPassword   dcsapi.Secret
	IAMEndpoint   string
	DCSTimeout    time.Duration

	HTTPAddr      string
	WebConfigFile string
	TopClientIPs  int

	Concurrency   int
	Weights       Weights
	PollFirst     time.Duration
	PollNext      time.Duration
	PollFactor    float64
	PollMax       time.Duration
	Deadline      time.Duration
	MaxRetry      int
	Retention     time.Duration
	HistoryMax    int
	IdleThreshold time.Duration
	APIBudget     budget.Rate
	APIBurst      int

	LogLevel  string
	LogFormat string

	AuditConfig string

	TriggerToken     dcsapi.Secret
	TriggerTokenFile string

	Demo         bool
	DemoInterval time.Duration
}

// Weights are the asynq queue priorities.
type Weights struct{ Followup, Trigger, Default, Schedule int }

func (w Weights) String() string {
	return fmt.Sprintf("followup=%d,trigger=%d,default=%d,schedule=%d", w.Followup, w.Trigger, w.Default, w.Schedule)
}

func parseWeights(s string) (Weights, error) {
	w := Weights{}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 1 {
			return w, fmt.Errorf("%q: want name=weight with weight >= 1", part)
		}
		switch k {
		case "followup":
			w.Followup = n
		case "trigger":
			w.Trigger = n
		case "default":
			w.Default = n
		case "schedule":
			w.Schedule = n
		default:
			return w, fmt.Errorf("unknown queue %q (want followup, trigger, default, schedule)", k)
		}
		seen[k] = true
	}
	if len(seen) != 4 {
		return w, errors.New("give a weight for each of followup, trigger, default and schedule")
	}
	return w, nil
}

// setting is one flag with its environment variable.
type setting struct {
	flag, env, def, usage string
	apply                 func(c *Config, v string) error
}

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
}

func secret(dst func(*Config) *dcsapi.Secret) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = dcsapi.Secret(v); return nil }
}

func dur(dst func(*Config) *time.Duration, min time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 30s or 5m", v)
		}
		if d < min {
			return fmt.Errorf("%v is below the minimum %v", d, min)
		}
		*dst(c) = d
		return nil
	}
}

func integer(dst func(*Config) *int, min int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		if n < min {
			return fmt.Errorf("%d is below the minimum %d", n, min)
		}
		*dst(c) = n
		return nil
	}
}

func boolean(dst func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*dst(c) = b
		return nil
	}
}

var settings = []setting{
	{"redis-url", "REDIS_URL", "redis://127.0.0.1:6379/0", "Redis for the queue and results: redis://, rediss://, redis-sentinel://h1:26379,h2:26379/<master>[/db], redis-cluster://h1:7000,h2:7001", secret(func(c *Config) *dcsapi.Secret { return &c.RedisURL })},
	{"key-prefix", "KEY_PREFIX", "dcsjobs", "prefix of every Redis key the worker writes (asynq's own keys start with asynq:)", str(func(c *Config) *string { return &c.KeyPrefix })},
	{"dcs-endpoint", "DCS_ENDPOINT", "", "DCS base URL; empty: https://dcs.<region>.myhuaweicloud.com", str(func(c *Config) *string { return &c.DCSEndpoint })},
	{"dcs-region", "DCS_REGION", "", "region, e.g. ap-southeast-1 (endpoint and API budget key)", str(func(c *Config) *string { return &c.DCSRegion })},
	{"project-id", "HUAWEICLOUD_SDK_PROJECT_ID", "", "IAM project id of the region", str(func(c *Config) *string { return &c.ProjectID })},
	{"ak", "HUAWEICLOUD_SDK_AK", "", "access key (AK/SK signing)", str(func(c *Config) *string { return &c.AccessKey })},
	{"sk", "HUAWEICLOUD_SDK_SK", "", "secret key; prefer the environment variable to the flag", secret(func(c *Config) *dcsapi.Secret { return &c.SecretKey })},
	{"security-token", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "", "security token of temporary AK/SK", secret(func(c *Config) *dcsapi.Secret { return &c.SecurityToken })},
	{"auth-token", "DCS_AUTH_TOKEN", "", "static IAM token (X-Auth-Token) instead of AK/SK", secret(func(c *Config) *dcsapi.Secret { return &c.AuthToken })},
	{"iam-domain", "DCS_IAM_DOMAIN", "", "IAM account name, for password authentication", str(func(c *Config) *string { return &c.IAMDomain })},
	{"iam-user", "DCS_IAM_USER", "", "IAM user name, for password authentication", str(func(c *Config) *string { return &c.IAMUser })},
	{"iam-password", "DCS_IAM_PASSWORD", "", "IAM user password (a token is fetched, cached and refreshed)", secret(func(c *Config) *dcsapi.Secret { return &c.IAMPassword })},
	{"iam-endpoint", "DCS_IAM_ENDPOINT", "", "IAM base URL; empty: https://iam.<region>.myhuaweicloud.com", str(func(c *Config) *string { return &c.IAMEndpoint })},
	{"dcs-timeout", "DCS_TIMEOUT", "30s", "timeout of one DCS HTTP call", dur(func(c *Config) *time.Duration { return &c.DCSTimeout }, 100*time.Millisecond)},
	{"http-addr", "HTTP_ADDR", "127.0.0.1:9180", "listen address of /healthz, /readyz and /metrics; empty disables", str(func(c *Config) *string { return &c.HTTPAddr })},
	{"web-config-file", "WEB_CONFIG_FILE", "", "exporter-toolkit web config (TLS, basic auth) for the HTTP server; empty: plain HTTP", str(func(c *Config) *string { return &c.WebConfigFile })},
	{"top-client-ips", "METRICS_TOP_CLIENT_IPS", "0", "export sessions of the top N client IPs per node (0: off, at most 20)", integer(func(c *Config) *int { return &c.TopClientIPs }, 0)},
	{"concurrency", "CONCURRENCY", "20", "tasks processed at once", integer(func(c *Config) *int { return &c.Concurrency }, 1)},
	{"queues", "QUEUE_WEIGHTS", "followup=6,trigger=4,default=3,schedule=1", "queue priorities", func(c *Config, v string) error {
		w, err := parseWeights(v)
		c.Weights = w
		return err
	}},
	{"poll-first", "POLL_FIRST", "0s", "wait between the scan and the first job poll (0: at once)", dur(func(c *Config) *time.Duration { return &c.PollFirst }, 0)},
	{"poll-next", "POLL_NEXT", "1s", "wait before the second poll; later waits grow by -poll-factor", dur(func(c *Config) *time.Duration { return &c.PollNext }, time.Second)},
	{"poll-factor", "POLL_FACTOR", "1.5", "each poll wait is the previous times this factor", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 1 || f > 10 {
			return fmt.Errorf("%q: want a number from 1 to 10", v)
		}
		c.PollFactor = f
		return nil
	}},
	{"poll-max", "POLL_MAX", "30s", "longest wait between polls", dur(func(c *Config) *time.Duration { return &c.PollMax }, time.Second)},
	{"deadline", "JOB_DEADLINE", "10m", "a DCS job not finished this long after the scan request fails the request", dur(func(c *Config) *time.Duration { return &c.Deadline }, 5*time.Second)},
	{"max-retry", "MAX_RETRY", "8", "retries of a task on transient errors (throttling does not count)", integer(func(c *Config) *int { return &c.MaxRetry }, 1)},
	{"retention", "RETENTION", "168h", "how long requests and snapshots are kept", dur(func(c *Config) *time.Duration { return &c.Retention }, time.Minute)},
	{"history", "HISTORY_MAX", "100", "snapshots kept per node", integer(func(c *Config) *int { return &c.HistoryMax }, 1)},
	{"idle-threshold", "IDLE_THRESHOLD", "10m", "sessions idle longer than this are counted as idle", dur(func(c *Config) *time.Duration { return &c.IdleThreshold }, time.Second)},
	{"api-budget", "DCS_API_BUDGET", "10/s", "DCS calls allowed per project and region, shared by all workers (N/s, N/m, N/h or off)", func(c *Config, v string) error {
		r, err := budget.ParseRate(v)
		c.APIBudget = r
		return err
	}},
	{"api-burst", "DCS_API_BURST", "0", "burst of the API budget; 0: the rate's N", integer(func(c *Config) *int { return &c.APIBurst }, 0)},
	{"log-level", "LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			c.LogLevel = v
			return nil
		}
		return fmt.Errorf("%q: want debug, info, warn or error", v)
	}},
	{"log-format", "LOG_FORMAT", "auto", "json, console, or auto (console on a terminal)", func(c *Config, v string) error {
		switch v {
		case "json", "console", "auto":
			c.LogFormat = v
			return nil
		}
		return fmt.Errorf("%q: want json, console or auto", v)
	}},
	{"audit-config", "AUDIT_CONFIG", "", "YAML file of scheduled audits (reloaded on SIGHUP and on change); empty: no audits", str(func(c *Config) *string { return &c.AuditConfig })},
	{"trigger-token", "TRIGGER_TOKEN", "", "bearer token of the trigger API (/api/v1/); empty: the API is off", secret(func(c *Config) *dcsapi.Secret { return &c.TriggerToken })},
	{"trigger-token-file", "TRIGGER_TOKEN_FILE", "", "file holding the trigger API token (instead of TRIGGER_TOKEN)", str(func(c *Config) *string { return &c.TriggerTokenFile })},
	{"demo", "DEMO", "false", "run everything in one process: embedded Redis, DCS simulator, periodic requests", boolean(func(c *Config) *bool { return &c.Demo })},
	{"demo-interval", "DEMO_INTERVAL", "20s", "demo: how often each simulated node is queried", dur(func(c *Config) *time.Duration { return &c.DemoInterval }, time.Second)},
}

// Load parses args (without the program name) with getenv as the source of
// defaults. Usage goes to out on -h (and Load returns flag.ErrHelp).
func Load(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(out)
	vals := make([]*flagValue, len(settings))
	for i, s := range settings {
		vals[i] = &flagValue{v: s.def, isBool: s.def == "false" || s.def == "true"}
		fs.Var(vals[i], s.flag, s.usage+" [$"+s.env+"]")
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: worker [flags]\n\nEvery flag falls back to the environment variable in brackets.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	c := &Config{}
	for i, s := range settings {
		v, from := vals[i].v, "-"+s.flag
		if !given[s.flag] {
			if e := getenv(s.env); e != "" {
				v, from = e, "$"+s.env
			}
		}
		if err := s.apply(c, v); err != nil {
			return nil, fmt.Errorf("config %s: %w", from, err)
		}
	}
	return c, c.Validate()
}

// flagValue holds a flag's text until Load applies it; boolean flags may be
// given without a value.
type flagValue struct {
	v      string
	isBool bool
}

func (f *flagValue) String() string {
	if f == nil {
		return ""
	}
	return f.v
}
func (f *flagValue) Set(s string) error { f.v = s; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// Validate checks what single fields cannot. Errors name the field.
func (c *Config) Validate() error {
	if _, err := redisurl.Parse(c.RedisURL.Reveal()); err != nil && !c.Demo {
		return fmt.Errorf("config REDIS_URL: %w", err)
	}
	if c.KeyPrefix == "" || strings.ContainsAny(c.KeyPrefix, "{} \t\n") {
		return fmt.Errorf("config KEY_PREFIX %q: must be non-empty without braces or spaces", c.KeyPrefix)
	}
	if c.TopClientIPs > 20 {
		return fmt.Errorf("config METRICS_TOP_CLIENT_IPS %d: at most 20 (cardinality cap)", c.TopClientIPs)
	}
	if c.WebConfigFile != "" {
		if err := web.Validate(c.WebConfigFile); err != nil {
			return fmt.Errorf("config WEB_CONFIG_FILE %q: %w", c.WebConfigFile, err)
		}
	}
	if c.PollMax < c.PollNext || c.PollMax < c.PollFirst {
		return fmt.Errorf("config POLL_MAX %v is shorter than POLL_FIRST %v or POLL_NEXT %v", c.PollMax, c.PollFirst, c.PollNext)
	}
	if c.Demo {
		return nil // the demo brings its own DCS and Redis
	}
	if c.DCSEndpoint == "" && c.DCSRegion == "" {
		return errors.New("config DCS_ENDPOINT or DCS_REGION: one is required")
	}
	if c.DCSRegion != "" {
		if _, err := dcsapi.EndpointForRegion(c.DCSRegion); err != nil {
			return fmt.Errorf("config DCS_REGION: %w", err)
		}
	}
	if err := dcsapi.ValidateID("HUAWEICLOUD_SDK_PROJECT_ID", c.ProjectID); err != nil {
		return fmt.Errorf("config %w", err)
	}
	n := 0
	if c.AccessKey != "" || c.SecretKey != "" {
		if c.AccessKey == "" || c.SecretKey == "" {
			return errors.New("config HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK: give both")
		}
		n++
	}
	if c.AuthToken != "" {
		n++
	}
	if c.IAMUser != "" || c.IAMPassword != "" {
		if c.IAMUser == "" || c.IAMPassword == "" || c.IAMDomain == "" {
			return errors.New("config DCS_IAM_DOMAIN, DCS_IAM_USER and DCS_IAM_PASSWORD: give all three")
		}
		n++
	}
	switch {
	case n == 0:
		return errors.New("config credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, DCS_AUTH_TOKEN, or DCS_IAM_DOMAIN/USER/PASSWORD")
	case n > 1:
		return errors.New("config credentials: more than one of AK/SK, DCS_AUTH_TOKEN and DCS_IAM_* is set; keep one")
	}
	if c.SecurityToken != "" && c.AccessKey == "" {
		return errors.New("config HUAWEICLOUD_SDK_SECURITY_TOKEN: needs HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK")
	}
	return nil
}

// Auth builds the authenticator the config names.
func (c *Config) Auth() dcsapi.Authenticator {
	switch {
	case c.AccessKey != "":
		return &dcsapi.AKSK{AccessKey: c.AccessKey, SecretKey: c.SecretKey, SecurityToken: c.SecurityToken}
	case c.AuthToken != "":
		return &dcsapi.Token{Token: c.AuthToken}
	default:
		return &dcsapi.IAMPassword{IAMEndpoint: c.IAMEndpoint, Region: c.DCSRegion, Domain: c.IAMDomain,
			User: c.IAMUser, Password: c.IAMPassword, ProjectID: c.ProjectID}
	}
}

// RegionKey names the API budget's region: the region, or the endpoint's host.
func (c *Config) RegionKey() string {
	if c.DCSRegion != "" {
		return c.DCSRegion
	}
	h := strings.TrimPrefix(strings.TrimPrefix(c.DCSEndpoint, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	return h
}
