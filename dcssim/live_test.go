package dcssim

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestParseClientList(t *testing.T) {
	t.Parallel()
	const text = "id=3 addr=127.0.0.1:50412 laddr=127.0.0.1:6379 fd=8 name=orders-api-1 age=12 idle=3 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22426 events=r cmd=client|list user=default redir=-1 resp=2 lib-name= lib-ver=\r\n" +
		"id=7 addr=[::1]:41000 fd=9 name= age=7200 idle=7100 flags=P db=2 sub=3 psub=1 multi=-1 qbuf=0 qbuf-free=0 obl=0 oll=2 omem=4096 events=rw cmd=subscribe\n" +
		"id=9 addr=/tmp/redis.sock:0 laddr=/tmp/redis.sock:0 fd=10 name=worker age=1 idle=0 flags=U db=0 sub=0 psub=0 multi=-1 qbuf=0 qbuf-free=0 obl=0 oll=0 omem=0 events=r cmd=ping user=app\n"
	got := parseClientList(text, "10.0.0.5:6379")
	want := []Client{
		{ID: "3", Addr: "127.0.0.1:50412", FD: "8", Name: "orders-api-1", Cmd: "client|list", Age: 12, Idle: 3, DB: "0",
			Flags: "N", Multi: -1, Qbuf: 26, QbufFree: 20448, Events: "r", Network: "ipv4", Peer: "127.0.0.1:6379", User: "default"},
		{ID: "7", Addr: "[::1]:41000", FD: "9", Cmd: "subscribe", Age: 7200, Idle: 7100, DB: "2", Flags: "P", Sub: 3, Psub: 1,
			Multi: -1, Oll: 2, Omem: 4096, Events: "rw", Network: "ipv6", Peer: "10.0.0.5:6379", User: "default"},
		{ID: "9", Addr: "/tmp/redis.sock:0", FD: "10", Name: "worker", Cmd: "ping", Age: 1, DB: "0", Flags: "U", Multi: -1,
			Events: "r", Network: "unix", Peer: "/tmp/redis.sock:0", User: "app"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d sessions", len(got))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("session %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// TestLiveMode scans the real Redis at 127.0.0.1:6379 (read-only: CLIENT
// LIST). It skips only when nothing answers there.
func TestLiveMode(t *testing.T) {
	t.Parallel()
	const addr = "127.0.0.1:6379"
	probe := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	defer probe.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := probe.Ping(ctx).Err(); err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			t.Skipf("no Redis at %s: %v", addr, err)
		}
		t.Fatalf("Redis at %s answers but PING fails: %v", addr, err)
	}
	// A named connection that must show up in the list.
	probe.Do(ctx, "CLIENT", "SETNAME", "dcssim-live-test")

	inv := &Inventory{Instances: []Instance{{ID: "cccccccc-cccc-4ccc-8ccc-cccccccccccc", CacheMode: "single",
		Nodes: []Node{
			{ID: "cccccccc-0000-4000-8000-000000000001", Type: "master", RedisAddr: addr},
		}}}}
	e := newEnv(t, Config{Inventory: inv})
	const inst, node = "cccccccc-cccc-4ccc-8ccc-cccccccccccc", "cccccccc-0000-4000-8000-000000000001"
	id := e.scanDone(inst, node)
	if r := e.do("GET", p("/jobs/"+id), ""); r.str("status") != "SUCCESS" {
		t.Fatalf("job: %s", r.raw)
	}
	all, _ := fetchAll(t, e, inst, node, "", 1000)
	var mine *Client
	for i, c := range all {
		if c.Name == "dcssim-live-test" {
			mine = &all[i]
		}
		if c.ID == "" || c.Addr == "" || c.Network == "" || c.Peer == "" || c.Flags == "" {
			t.Errorf("incomplete session %+v", c)
		}
	}
	if mine == nil {
		t.Fatalf("named probe connection not among %d sessions", len(all))
	}
	if mine.Network != "ipv4" || mine.Peer != addr || mine.DB != "0" {
		t.Errorf("probe session %+v", *mine)
	}
	res, _ := e.list(inst, node, "&addr=127.0.0.1&sort=id&order=desc")
	if res.Count != len(all) {
		t.Errorf("ip filter: %d of %d", res.Count, len(all))
	}

	t.Run("unreachable redis fails the job", func(t *testing.T) {
		inv := &Inventory{Instances: []Instance{{ID: "dddddddd-dddd-4ddd-8ddd-dddddddddddd", CacheMode: "single",
			Nodes: []Node{{ID: "dddddddd-0000-4000-8000-000000000001", Type: "master", RedisAddr: "127.0.0.1:1"}}}}}
		e := newEnv(t, Config{Inventory: inv})
		id := e.scanDone("dddddddd-dddd-4ddd-8ddd-dddddddddddd", "dddddddd-0000-4000-8000-000000000001")
		r := e.do("GET", p("/jobs/"+id), "")
		if r.str("status") != "FAIL" || !strings.Contains(r.str("fail_reason"), "CLIENT LIST") {
			t.Fatalf("job: %s", r.raw)
		}
	})
}
