// Package fakeclients makes DCS sessions for the console's tests, shared by
// its unit tests (package console) and its browser test (package
// console_test, which cannot see the former's helpers).
package fakeclients

import (
	"fmt"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// Client is a session with the fields the tests look at; the others are
// DCS's usual values.
func Client(id, addr, name, user, db, cmd string, age, idle int64) dcsapi.ClientInfo {
	return dcsapi.ClientInfo{ID: id, Addr: addr, FD: "1" + id, Name: name, Cmd: cmd, Age: age, Idle: idle, DB: db,
		Flags: "N", Multi: -1, QbufFree: 32768, Events: "r", Network: "ipv4", Peer: "192.168.0.5:6379", User: user}
}

// Gen makes n varied sessions, deterministic in n.
func Gen(n int) []dcsapi.ClientInfo {
	names := []string{"orders-api", "billing-worker", "", "session-cache", "notifier"}
	users := []string{"default", "app_rw", "readonly"}
	cmds := []string{"get", "set", "hgetall", "brpop", "ping", "client|list"}
	out := make([]dcsapi.ClientInfo, n)
	for i := range out {
		c := Client(fmt.Sprint(1000+i), fmt.Sprintf("10.%d.%d.%d:%d", i%3, i/250%250, i%250, 30000+i%20000),
			names[i%len(names)], users[i%len(users)], fmt.Sprint(i%4), cmds[i%len(cmds)], int64(i*7%90000), int64(i*13%4000))
		if c.Name != "" {
			c.Name += fmt.Sprint("-", i%8)
		}
		c.Omem = int64(i % 97 * 1024)
		out[i] = c
	}
	return out
}
