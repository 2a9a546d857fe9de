// Command enqueue submits session queries to the worker's queue and reads
// their status and results from Redis.
//
//	enqueue sessions -instance ID (-node ID | -all-nodes) [-clean-cache] [-wait] [-timeout D] [-o table|json|csv]
//	enqueue status ID [-o table|json]
//	enqueue result ID [-o table|json|csv]
//	enqueue history -instance ID -node ID [-n N] [-o table|json]
//
// Redis comes from -redis-url or $REDIS_URL (default redis://127.0.0.1:6379/0).
// Exit codes: 0 success, 1 the request failed (reason on stderr), 2 invalid
// usage, 3 timed out waiting, 4 Redis or internal error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/mattn/go-isatty"
	"github.com/redis/go-redis/v9"

	"github.com/dcsjobs/dcsjobs/redisurl"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitTimeout = 3
	exitError   = 4
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, isTTY(os.Stderr))
	stop()
	os.Exit(code)
}

func isTTY(f *os.File) bool { return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()) }

const usage = `Usage:
  enqueue sessions -instance ID (-node ID | -all-nodes) [-clean-cache] [-wait] [-timeout D] [-o table|json|csv]
  enqueue status ID [-o table|json]
  enqueue result ID [-o table|json|csv]
  enqueue history -instance ID -node ID [-n N] [-o table|json]

Common flags (before or after the command's own):
  -redis-url URL   Redis of the worker [$REDIS_URL, default redis://127.0.0.1:6379/0]
  -key-prefix P    key prefix of the worker [$KEY_PREFIX, default dcsjobs]

Exit codes: 0 success, 1 request failed, 2 invalid usage, 3 timeout, 4 Redis or internal error.
`

// app holds what every command needs.
type app struct {
	stdout, stderr io.Writer
	progress       bool // stderr is a terminal: show progress
	rdb            redis.UniversalClient
	reqs           *tasks.Requests
	store          *results.Store
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, tty bool) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	redisURL := fs.String("redis-url", envOr(getenv, "REDIS_URL", "redis://127.0.0.1:6379/0"), "")
	prefix := fs.String("key-prefix", envOr(getenv, "KEY_PREFIX", tasks.DefaultPrefix), "")
	var runCmd func(context.Context, *app) error
	var err error
	switch cmd {
	case "sessions":
		runCmd, err = parseSessions(fs, rest)
	case "status":
		runCmd, err = parseStatus(fs, rest)
	case "result":
		runCmd, err = parseResult(fs, rest)
	case "history":
		runCmd, err = parseHistory(fs, rest)
	default:
		err = usagef("unknown command %q (want sessions, status, result or history)", cmd)
	}
	if err != nil {
		fmt.Fprintf(stderr, "enqueue: %v\n\n%s", err, usage)
		return exitUsage
	}
	p, err := redisurl.Parse(*redisURL)
	if err != nil {
		fmt.Fprintf(stderr, "enqueue: %v\n", err)
		return exitUsage
	}
	rdb := p.NewClient()
	defer rdb.Close()
	a := &app{stdout: stdout, stderr: stderr, progress: tty, rdb: rdb,
		reqs:  tasks.NewRequests(rdb, *prefix, 0),
		store: results.NewStore(rdb, results.StoreOptions{Prefix: *prefix})}
	err = runCmd(ctx, a)
	var ue usageError
	var fe failedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "enqueue: %v\n", err)
		return exitUsage
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "enqueue: %v\n", err)
		return exitFailed
	case errors.Is(err, errTimeout):
		fmt.Fprintf(stderr, "enqueue: %v\n", err)
		return exitTimeout
	default:
		fmt.Fprintf(stderr, "enqueue: %v\n", err)
		return exitError
	}
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

// parseInterspersed parses flags that may come before or after positional
// arguments (flag stops at the first non-flag).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

var errTimeout = errors.New("timed out")

// failedError is a request that ended failed.
type failedError struct{ msg string }

func (e failedError) Error() string { return e.msg }

func outputFlag(fs *flag.FlagSet, allowed ...string) func() (string, error) {
	o := fs.String("o", "table", "")
	return func() (string, error) {
		for _, a := range allowed {
			if *o == a {
				return *o, nil
			}
		}
		return "", usagef("-o %q: want one of %v", *o, allowed)
	}
}

func parseSessions(fs *flag.FlagSet, args []string) (func(context.Context, *app) error, error) {
	inst := fs.String("instance", "", "")
	node := fs.String("node", "", "")
	all := fs.Bool("all-nodes", false, "")
	clean := fs.Bool("clean-cache", false, "")
	wait := fs.Bool("wait", false, "")
	timeout := fs.Duration("timeout", 15*time.Minute, "")
	out := outputFlag(fs, "table", "json", "csv")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, usagef("unexpected argument %q", pos[0])
	}
	format, err := out()
	if err != nil {
		return nil, err
	}
	opts := tasks.SubmitOptions{InstanceID: *inst, NodeID: *node, AllNodes: *all, CleanCache: *clean, Origin: tasks.OriginCLI}
	if *inst == "" {
		return nil, usagef("-instance is required")
	}
	if *node == "" && !*all {
		return nil, usagef("give -node ID or -all-nodes")
	}
	if err := opts.Validate(); err != nil {
		return nil, usagef("%v", err)
	}
	if *timeout <= 0 {
		return nil, usagef("-timeout %v must be positive", *timeout)
	}
	return func(ctx context.Context, a *app) error {
		client := asynq.NewClientFromRedisClient(a.rdb)
		sub := tasks.NewSubmitter(client, a.reqs, tasks.Config{})
		req, err := sub.Submit(ctx, opts)
		if err != nil {
			return err
		}
		if !*wait {
			fmt.Fprintln(a.stdout, req.ID)
			return nil
		}
		if a.progress {
			fmt.Fprintf(a.stderr, "request %s\n", req.ID)
		}
		return a.waitAndPrint(ctx, req.ID, *timeout, format)
	}, nil
}

func parseStatus(fs *flag.FlagSet, args []string) (func(context.Context, *app) error, error) {
	return parseRequestCommand(fs, args, []string{"table", "json"}, func(_ context.Context, a *app, st *tasks.Status, format string) error {
		return printStatus(a.stdout, st, format)
	})
}

func parseResult(fs *flag.FlagSet, args []string) (func(context.Context, *app) error, error) {
	return parseRequestCommand(fs, args, []string{"table", "json", "csv"}, func(ctx context.Context, a *app, st *tasks.Status, format string) error {
		return a.printResult(ctx, st, format)
	})
}

// parseRequestCommand parses "<command> ID [-o format]" and returns a command
// that reads the request's status and hands it to show.
func parseRequestCommand(fs *flag.FlagSet, args []string, formats []string,
	show func(context.Context, *app, *tasks.Status, string) error) (func(context.Context, *app) error, error) {
	out := outputFlag(fs, formats...)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	format, err := out()
	if err != nil {
		return nil, err
	}
	id, err := oneID(pos)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, a *app) error {
		st, err := a.reqs.Status(ctx, id)
		if err != nil {
			return notFound(err)
		}
		return show(ctx, a, st, format)
	}, nil
}

func parseHistory(fs *flag.FlagSet, args []string) (func(context.Context, *app) error, error) {
	inst := fs.String("instance", "", "")
	node := fs.String("node", "", "")
	n := fs.Int("n", 20, "")
	out := outputFlag(fs, "table", "json")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, usagef("unexpected argument %q", pos[0])
	}
	format, err := out()
	if err != nil {
		return nil, err
	}
	if err := (tasks.SubmitOptions{InstanceID: *inst, NodeID: *node}).Validate(); err != nil {
		return nil, usagef("%v", err)
	}
	if *n < 1 {
		return nil, usagef("-n %d must be at least 1", *n)
	}
	return func(ctx context.Context, a *app) error {
		h, err := a.store.History(ctx, *inst, *node, *n)
		if err != nil {
			return err
		}
		return printHistory(a.stdout, h, format)
	}, nil
}

func oneID(pos []string) (string, error) {
	if len(pos) != 1 {
		return "", usagef("give exactly one request id")
	}
	if err := tasks.ValidateRequestID(pos[0]); err != nil {
		return "", usagef("%v", err)
	}
	return pos[0], nil
}

func notFound(err error) error {
	if errors.Is(err, tasks.ErrRequestNotFound) {
		return failedError{err.Error()}
	}
	return err
}

// waitAndPrint follows a request until it ends, showing progress on a
// terminal, then prints the result (or returns the failure).
func (a *app) waitAndPrint(ctx context.Context, id string, timeout time.Duration, format string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := a.reqs.Status(ctx, id)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil {
			if line := progressLine(st); a.progress && line != last {
				fmt.Fprintf(a.stderr, "  %s\n", line)
				last = line
			}
			if s := st.State(); s.Terminal() {
				return a.printResult(ctx, st, format)
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w after %v waiting for request %s (it goes on; see: enqueue status %s)", errTimeout, timeout, id, id)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
