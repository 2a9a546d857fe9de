// Command dcs-sim serves the DCS simulator (package dcssim) over HTTP, for
// demos and for running the worker against something that answers like
// Huawei Cloud DCS.
//
//	go run ./cmd/dcs-sim                      # default inventory on 127.0.0.1:8780
//	go run ./cmd/dcs-sim -listen 127.0.0.1:0  # any free port
//	go run ./cmd/dcs-sim -h                   # every flag
//
// Every flag can also be set from the environment as DCSSIM_<FLAG>, with the
// name upper-cased and dashes turned into underscores (DCSSIM_RATE_LIMIT=5);
// a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dcsjobs/dcsjobs/dcssim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	listen, ak, sk, securityToken, projectID, projectName string
	inventory, timeFormat, opsList                        string
	tokens, users                                         []string
	tokenTTL, jobDuration                                 time.Duration
	seed                                                  uint64
	failShare                                             float64
	quirks, noAuth, quiet                                 bool
	faults                                                dcssim.Faults
	latency, faultJobDuration                             time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*options, *flag.FlagSet, error) {
	o := &options{}
	fs := flag.NewFlagSet("dcs-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dcs-sim [flags]\n\nServes a simulator of the Huawei Cloud DCS session APIs, job API, instance APIs,\n"+
			"IAM password tokens and API-gateway behaviour. Admin API (no auth): GET|PUT /_sim/faults,\n"+
			"GET /_sim/stats, GET /_sim/inventory, POST /_sim/reset, POST /_sim/expire-tokens.\n"+
			"Each flag may also come from DCSSIM_<FLAG> (upper case, - → _).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8780", "`address` to listen on (\":0\" or \"127.0.0.1:0\" picks a free port)")
	fs.StringVar(&o.ak, "ak", dcssim.DefaultAK, "access key accepted for SDK-HMAC-SHA256 signatures (empty: no AK/SK auth)")
	fs.StringVar(&o.sk, "sk", dcssim.DefaultSK, "secret key of -ak")
	fs.StringVar(&o.securityToken, "security-token", "", "if set, -ak is a temporary credential and requests must send this X-Security-Token")
	fs.Func("token", "static X-Auth-Token value to accept (repeatable)", func(v string) error {
		o.tokens = append(o.tokens, v)
		return nil
	})
	fs.Func("user", "IAM user for POST /v3/auth/tokens as `domain/name:password` (repeatable)", func(v string) error {
		o.users = append(o.users, v)
		return nil
	})
	fs.DurationVar(&o.tokenTTL, "token-ttl", dcssim.DefaultTokenTTL, "lifetime of issued IAM tokens")
	fs.StringVar(&o.projectID, "project-id", dcssim.DefaultProjectID, "project ID served (32 lower-case hex)")
	fs.StringVar(&o.projectName, "project-name", dcssim.DefaultProjectName, "project (region) name accepted in IAM token scopes")
	fs.StringVar(&o.inventory, "inventory", "", "inventory `file` (YAML, or JSON if it ends in .json); empty: built-in inventory")
	fs.Uint64Var(&o.seed, "seed", 1, "seed for job IDs, sessions and fault choices")
	fs.DurationVar(&o.jobDuration, "job-duration", dcssim.DefaultJobDuration, "scan job duration (first quarter INIT, then RUNNING)")
	fs.Float64Var(&o.failShare, "fail-share", 0, "share (0..1) of scan jobs that end FAIL")
	fs.StringVar(&o.timeFormat, "time-format", dcssim.TimeRFC3339, "format of ListClients \"time\": rfc3339, epoch-ms or datetime")
	fs.BoolVar(&o.quirks, "quirks", false, "ListClients with idle/age as strings, db as a number, nulls and unknown fields")
	fs.BoolVar(&o.noAuth, "no-auth", false, "accept requests without any credentials (demo only)")
	fs.BoolVar(&o.quiet, "quiet", false, "do not log each request to stderr")
	// Faults.
	fs.StringVar(&o.opsList, "fault-ops", "", "comma-separated operations the request faults apply to (default: all DCS operations): "+strings.Join(dcssim.Operations, ","))
	fs.Float64Var(&o.faults.RateLimit, "rate-limit", 0, "gateway throttling in requests/second (0: off); above it 429 APIGW.0308")
	fs.IntVar(&o.faults.RateBurst, "rate-burst", 0, "throttling bucket size (0: ceil(rate-limit))")
	fs.IntVar(&o.faults.RetryAfter, "retry-after", 0, "`seconds` sent as Retry-After on 429 (0: no header)")
	fs.Float64Var(&o.faults.ErrorShare, "error-share", 0, "share (0..1) of requests failing with 500 DCS.5000 / 502 / 503")
	fs.IntVar(&o.faults.FailNext, "fail-next", 0, "the next N requests fail with -fail-next-status")
	fs.IntVar(&o.faults.FailNextStatus, "fail-next-status", 500, "status of -fail-next failures: 500, 502 or 503")
	fs.DurationVar(&o.latency, "latency", 0, "latency added to each request")
	fs.Float64Var(&o.faults.TruncateShare, "truncate-share", 0, "share (0..1) of responses cut in half (client sees unexpected EOF)")
	fs.Float64Var(&o.faults.MalformedShare, "malformed-share", 0, "share (0..1) of responses with an HTML body instead of JSON")
	fs.DurationVar(&o.faultJobDuration, "slow-job-duration", 0, "if > 0, overrides every job duration (slow jobs)")
	fs.StringVar(&o.faults.FailReason, "fail-reason", "", "fail_reason of failed jobs (default \""+dcssim.DefaultFailReason+"\")")
	fs.BoolVar(&o.faults.JobsUnknown, "jobs-unknown", false, "GET /jobs/{id} answers 404 DCS.5101 for scan jobs (scans still complete)")

	if err := fs.Parse(args); err != nil {
		return nil, fs, err
	}
	if fs.NArg() > 0 {
		return nil, fs, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "DCSSIM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !set[f.Name] && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", env, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, fs, envErr
	}
	o.faults.Latency = dcssim.Duration(o.latency)
	o.faults.JobDuration = dcssim.Duration(o.faultJobDuration)
	if o.opsList != "" {
		for _, op := range strings.Split(o.opsList, ",") {
			o.faults.Ops = append(o.faults.Ops, strings.TrimSpace(op))
		}
	}
	return o, fs, nil
}

func (o *options) config(stderr io.Writer) (dcssim.Config, error) {
	cfg := dcssim.Config{
		ProjectID: o.projectID, ProjectName: o.projectName, Tokens: o.tokens, TokenTTL: o.tokenTTL,
		AuthDisabled: o.noAuth, Seed: o.seed, JobDuration: o.jobDuration, FailShare: o.failShare,
		Faults: o.faults, TimeFormat: o.timeFormat, Quirks: o.quirks,
		AccessKeys: map[string]string{},
	}
	if o.ak != "" {
		if o.sk == "" {
			return cfg, errors.New("-sk is required with -ak")
		}
		cfg.AccessKeys[o.ak] = o.sk
		if o.securityToken != "" {
			cfg.SecurityTokens = map[string]string{o.ak: o.securityToken}
		}
	}
	for _, u := range o.users {
		dn, pw, ok := strings.Cut(u, ":")
		domain, name, ok2 := strings.Cut(dn, "/")
		if !ok || !ok2 {
			return cfg, fmt.Errorf("-user %q: want domain/name:password", dn)
		}
		cfg.Users = append(cfg.Users, dcssim.User{Domain: domain, Name: name, Password: pw})
	}
	if o.inventory != "" {
		inv, err := dcssim.LoadInventory(o.inventory)
		if err != nil {
			return cfg, err
		}
		cfg.Inventory = inv
	}
	if !o.quiet {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	return cfg, nil
}

// run serves until ctx is done; it returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, _, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "dcs-sim:", err)
		return 2
	}
	cfg, err := o.config(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "dcs-sim:", err)
		return 2
	}
	sim, err := dcssim.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "dcs-sim:", err)
		return 2
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		fmt.Fprintln(stderr, "dcs-sim:", err)
		return 1
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	banner(stdout, "http://"+ln.Addr().String(), o, sim)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintln(stderr, "dcs-sim:", err)
		return 1
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		fmt.Fprintln(stderr, "dcs-sim: shutdown:", err)
		return 1
	}
	fmt.Fprintln(stdout, "dcs-sim: stopped")
	return 0
}

func banner(w io.Writer, url string, o *options, sim *dcssim.Server) {
	fmt.Fprintf(w, "dcs-sim: listening on %s\n", url)
	fmt.Fprintf(w, "  project id: %s (name %s)\n", sim.ProjectID(), o.projectName)
	switch {
	case o.noAuth:
		fmt.Fprintln(w, "  auth:       disabled (-no-auth)")
	case o.ak != "":
		fmt.Fprintf(w, "  AK / SK:    %s / %s (simulator demo credentials)\n", o.ak, o.sk)
	}
	for _, t := range o.tokens {
		fmt.Fprintf(w, "  token:      %s\n", t)
	}
	for _, u := range o.users {
		name, _, _ := strings.Cut(u, ":")
		fmt.Fprintf(w, "  IAM user:   %s (POST %s/v3/auth/tokens)\n", name, url)
	}
	fmt.Fprintf(w, "  admin:      %s/_sim/stats, %s/_sim/faults\n", url, url)
	fmt.Fprintln(w, "  instances and node IDs (scannable nodes marked *):")
	for _, in := range sim.Inventory().Instances {
		fmt.Fprintf(w, "    %s  %-15s %-11s Redis %s %s\n", in.ID, in.Name, in.CacheMode, in.EngineVersion, in.Status)
		for _, n := range in.Nodes {
			mark := " "
			if n.Scannable(in.CacheMode) {
				mark = "*"
			}
			fmt.Fprintf(w, "     %s node %s  %-6s sessions=%d\n", mark, n.ID, n.Type, n.SessionCount())
		}
	}
	fmt.Fprintf(w, "  e.g. POST %s/v2/%s/instances/%s/clients {\"node_id\":\"%s\"}\n",
		url, sim.ProjectID(), dcssim.SingleInstanceID, dcssim.SingleNodeID)
}
