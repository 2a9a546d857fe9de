// Package testredis starts throwaway redis-server processes for tests that
// stop, restart or fill Redis, or that need a whole server to themselves
// (asynq's keys are global to a database). Tests never mock Redis.
package testredis

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process owned by a test.
type Server struct {
	t    testing.TB
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the REDIS_URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a client closed at the end of the test.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// FreePort returns a TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs redis-server on a free port with persistence (AOF, fsync
// always) in a temporary directory, so that Restart loses nothing. extra
// arguments are appended (e.g. "--cluster-enabled", "yes"). The server is
// stopped at the end of the test.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (apt-get install redis-server; .ci/run does it): %v", err)
	}
	s := &Server{t: t, Port: FreePort(t), Dir: t.TempDir()}
	s.args = append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.Port), "--dir", s.Dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no",
		"--logfile", filepath.Join(s.Dir, "redis.log")}, extra...)
	s.cmd = exec.Command(bin, s.args...)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.cmd.Path, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.Ping(context.Background()).Err(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on %s did not answer; log:\n%s", s.Addr(), s.log())
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return string(b)
}

// Stop kills the server (SIGKILL: the AOF with fsync always keeps every
// acknowledged write).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = &exec.Cmd{Path: s.cmd.Path}
}

// Restart stops the server, waits d, and starts it again on the same port
// with the same data.
func (s *Server) Restart(d time.Duration) {
	s.t.Helper()
	s.Stop()
	time.Sleep(d)
	s.start()
}

// Info returns one field of INFO (e.g. "used_memory").
func (s *Server) Info(ctx context.Context, c *redis.Client, field string) string {
	txt, _ := c.Info(ctx).Result()
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// String describes the server for test logs.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s (%s)", s.Addr(), s.Dir) }
