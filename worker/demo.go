package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/dcsjobs/dcsjobs/budget"
	"github.com/dcsjobs/dcsjobs/config"
	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// Demo listen addresses; when taken, a free port is used instead.
const (
	DemoRedisAddr = "127.0.0.1:6390"
	DemoSimAddr   = "127.0.0.1:8780"
	localRedis    = "127.0.0.1:6379"
)

// DemoTargets are the requests the demo submits every interval.
var DemoTargets = []tasks.SubmitOptions{
	{InstanceID: dcssim.SingleInstanceID, NodeID: dcssim.SingleNodeID, Origin: tasks.OriginDemo},
	{InstanceID: dcssim.HAInstanceID, NodeID: dcssim.HASlaveNodeID, Origin: tasks.OriginDemo},
	{InstanceID: dcssim.ClusterInstanceID, AllNodes: true, Origin: tasks.OriginDemo},
	{InstanceID: dcssim.ProxyInstanceID, AllNodes: true, Origin: tasks.OriginDemo},
}

// RunDemo runs the whole product in one process on a machine with nothing
// installed: an embedded Redis (miniredis, on a TCP port so `enqueue` can
// connect), the DCS simulator, a worker, and periodic requests. If a Redis
// server answers on 127.0.0.1:6379, the single-node instance shows that
// server's real CLIENT LIST.
func RunDemo(ctx context.Context, cfg *config.Config, log zerolog.Logger, stdout io.Writer) error {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true) // without it, TTLs (asynq locks, retention) never expire
	if err := m.StartAddr(DemoRedisAddr); err != nil {
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("demo: start embedded redis: %w", err)
		}
	}
	defer m.Close()

	inv := dcssim.DefaultInventory()
	live := redisAnswers(ctx, localRedis)
	if live {
		for i := range inv.Instances {
			if inv.Instances[i].ID == dcssim.SingleInstanceID {
				inv.Instances[i].Nodes[0].RedisAddr = localRedis
			}
		}
	}
	sim, err := dcssim.New(dcssim.Config{Inventory: inv, JobDuration: 3 * time.Second})
	if err != nil {
		return fmt.Errorf("demo: simulator: %w", err)
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", DemoSimAddr)
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("demo: simulator listener: %w", err)
		}
	}
	simSrv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = simSrv.Serve(ln) }()
	defer simSrv.Close()

	c := *cfg
	if c.AuditConfig == "" {
		dir, err := os.MkdirTemp("", "dcsjobs-demo")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.AuditConfig = filepath.Join(dir, "audits.yml")
		if err := os.WriteFile(c.AuditConfig, []byte(demoAudits), 0o600); err != nil {
			return err
		}
	}
	c.RedisURL = dcsapi.Secret("redis://" + m.Addr() + "/0")
	c.DCSEndpoint = "http://" + ln.Addr().String()
	c.DCSRegion = ""
	c.ProjectID = dcssim.DefaultProjectID
	c.AccessKey, c.SecretKey = dcssim.DefaultAK, dcsapi.Secret(dcssim.DefaultSK)
	c.AuthToken, c.SecurityToken, c.IAMUser, c.IAMPassword = "", "", "", ""
	if c.APIBudget.N == 0 {
		c.APIBudget = budget.Rate{N: 20, Period: time.Second}
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	w, err := Start(ctx, &c, log, Options{Redis: rdb})
	if err != nil {
		return err
	}
	printDemoHelp(stdout, m.Addr(), c.DCSEndpoint, w.HTTPAddr(), live)

	submitDemo(ctx, w, log)
	t := time.NewTicker(c.DemoInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return w.Shutdown()
		case <-t.C:
			submitDemo(ctx, w, log)
		}
	}
}

// demoAudits are the demo's scheduled audits, with rules the simulated
// sessions partly violate, so that findings show.
var demoAudits = fmt.Sprintf(`audits:
  - name: demo-single
    instance: %s
    nodes: [%s]
    schedule: "@every 1m"
    rules:
      idle_sessions: {longer_than: 10m, max: 5}
      allowed_cidrs: [10.0.0.0/8, 172.16.0.0/12]
      new_clients: true
  - name: demo-cluster
    instance: %s
    all_nodes: true
    schedule: "@every 1m"
    rules:
      max_sessions_per_client_ip: 60
      max_share_of_maxclients: 0.02
`, dcssim.SingleInstanceID, dcssim.SingleNodeID, dcssim.ClusterInstanceID)

func submitDemo(ctx context.Context, w *Worker, log zerolog.Logger) {
	for _, o := range DemoTargets {
		if _, err := w.Submitter().Submit(ctx, o); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn().Err(err).Str("instance", o.InstanceID).Msg("demo request not submitted")
		}
	}
}

func redisAnswers(ctx context.Context, addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 300 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}

func printDemoHelp(w io.Writer, redisAddr, simURL, httpAddr string, live bool) {
	liveNote := "no local Redis answered on " + localRedis + ", so every node is synthetic"
	if live {
		liveNote = "node " + dcssim.SingleNodeID + " shows the real CLIENT LIST of the Redis on " + localRedis
	}
	fmt.Fprintf(w, `
dcsjobs demo is running (Ctrl-C stops it)
  embedded Redis   redis://%[1]s/0
  DCS simulator    %[2]s   (admin: %[2]s/_sim/stats)
  web console      http://%[3]s/console/
  metrics          http://%[3]s/metrics
  audits           demo-single and demo-cluster, every minute (findings in enqueue history)
  %[4]s

Every few seconds the demo queries a few simulated nodes. From another terminal:

  export REDIS_URL=redis://%[1]s/0
  go run ./cmd/enqueue sessions -instance %[5]s -node %[6]s -wait
  go run ./cmd/enqueue sessions -instance %[7]s -all-nodes -wait -o json
  go run ./cmd/enqueue history -instance %[5]s -node %[6]s

`, redisAddr, simURL, httpAddr, liveNote, dcssim.SingleInstanceID, dcssim.SingleNodeID, dcssim.ClusterInstanceID)
}
