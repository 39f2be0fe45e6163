// Package redistest starts a private redis-server for a test, listening on a
// Unix socket only, so tests never share data with each other or with the
// machine's Redis and never race for a TCP port.
package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one private redis-server process.
type Server struct {
	// URL is the go-redis URL of the server (unix://...).
	URL    string
	Socket string
}

// Start runs a redis-server on a Unix socket in a temporary directory and stops
// it when the test ends. It fails the test when redis-server is not installed
// (the machine kinds vms runs on have it; `apt-get install -y redis-server`).
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t)
}

// StartWith is Start with extra redis-server arguments, which override
// the defaults (e.g. "--appendonly", "no").
func StartWith(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found: install it with `apt-get install -y redis-server`")
	}
	dir, err := os.MkdirTemp("", "vms-redis-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "redis.sock")
	args := []string{"--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		// The durability workers demand by default (redis.durability aof):
		// every write on disk before Redis replies.
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log")}
	cmd := exec.Command(bin, append(args, extra...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	})
	s := &Server{URL: "unix://" + sock, Socket: sock}
	rdb := s.Client(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := rdb.Ping(context.Background()).Err(); err == nil {
			break
		} else if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server did not start: %v\n%s", err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

// Client returns a go-redis client for the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(fmt.Errorf("redistest: %w", err))
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
