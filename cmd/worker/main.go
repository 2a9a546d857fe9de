// Command worker runs the DCS session pipeline: it takes query requests from
// the Redis-backed queue, starts DCS scans, polls their jobs, stores the
// session lists and serves /healthz and /readyz. `worker -demo` runs the whole
// product in one process with an embedded Redis and the DCS simulator.
//
// Every flag falls back to an environment variable; run `worker -h`.
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

	"github.com/dcsjobs/dcsjobs/config"
	"github.com/dcsjobs/dcsjobs/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	log := worker.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if cfg.Demo {
		err = worker.RunDemo(ctx, cfg, log, stdout)
	} else {
		err = worker.Run(ctx, cfg, log, worker.Options{})
	}
	if err != nil {
		log.Error().Err(err).Msg("worker failed")
		return 1
	}
	return 0
}
