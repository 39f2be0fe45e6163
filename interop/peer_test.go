//go:build linux

package interop

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vms-project/vms/internal/testutil"
)

// requireBinary returns the path of a peer's program. When it is not
// installed the test is skipped with the command that installs it, except
// in CI (CI set to anything but "", "0" or "false"), where a missing peer
// fails the test: CI installs the peers and must never skip these tests.
func requireBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	// kamailio lives in /usr/sbin, which a non-root PATH often lacks.
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "0" && ci != "false" {
		t.Fatalf("%s is not installed and CI=%s: interop tests never skip in CI. "+
			"Install it with `apt-get install -y %s` (`make deps-test` does it as root).", name, ci, pkg)
	}
	t.Skipf("%s is not installed: skipping the interop test against a real %s. "+
		"Install it with `sudo apt-get install -y %s` (CI installs it and never skips).", name, name, pkg)
	return ""
}

// freePort returns a loopback port that is free for both UDP and TCP at
// the moment of the call (peers such as baresip listen on both). The
// sockets are released before returning, so the peer can bind the port.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free UDP port: %v", err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		_ = u.Close()
		if err != nil {
			continue // taken for TCP: try another
		}
		_ = l.Close()
		return port
	}
	t.Fatal("found no loopback port free for both UDP and TCP in 20 tries")
	return 0
}

// peer is a child process started by a test: its output is kept and
// attached to the test log when the test fails, and the process (with its
// own children: kamailio forks workers) is stopped when the test ends.
type peer struct {
	name string
	cmd  *exec.Cmd
	out  *testutil.LockedBuffer
	done chan struct{} // closed when the process has exited
	err  error         // exit error, set before done is closed
}

// startPeer runs bin with args in its own process group and registers its
// shutdown (SIGTERM to the group, SIGKILL after 5 s) with t.Cleanup.
func startPeer(t *testing.T, name, bin string, args ...string) *peer {
	t.Helper()
	p := &peer{name: name, out: &testutil.LockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdin = nil
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// Wait returns even if a grandchild keeps the output pipe open.
	p.cmd.WaitDelay = 2 * time.Second
	// Its own group, so that the group can be signalled. Pdeathsig kills it
	// if the test binary dies before the cleanup runs (strictly: when the
	// OS thread that started it exits, which Go threads do not do here).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s (%s): %v", name, bin, err)
	}
	t.Logf("started %s (pid %d): %s %s", name, p.cmd.Process.Pid, bin, strings.Join(args, " "))
	go func() { // owner: p; exits when the process does
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("---- %s output ----\n%s---- end of %s output ----", name, p.out.String(), name)
		}
	})
	return p
}

// stop ends the process group: SIGTERM, then SIGKILL if it is still up
// after 5 s. It waits for the process to be reaped.
func (p *peer) stop(t *testing.T) {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.done:
		// The leader is gone; its children (kamailio's) may not be.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Logf("%s did not exit 5 s after SIGTERM: killing it", p.name)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // stragglers of the group, if any
}

// exited reports whether the process has ended, and how.
func (p *peer) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// waitSIP blocks until the peer answers a SIP OPTIONS request on its UDP
// address (any response proves it is listening and processing SIP), or
// fails the test after 15 s or when the process exits.
func (p *peer) waitSIP(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().String()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(15 * time.Second)
	for i := 1; time.Now().Before(deadline); i++ {
		if done, err := p.exited(); done {
			t.Fatalf("%s exited before it answered SIP on %s: %v\n%s", p.name, addr, err, p.out.String())
		}
		req := fmt.Sprintf("OPTIONS sip:probe@%[1]s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %[2]s;branch=z9hG4bK-probe-%[3]d;rport\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:probe@%[2]s>;tag=probe%[3]d\r\n"+
			"To: <sip:probe@%[1]s>\r\n"+
			"Call-ID: probe-%[3]d@%[2]s\r\n"+
			"CSeq: %[3]d OPTIONS\r\n"+
			"Content-Length: 0\r\n\r\n", addr, local, i)
		if _, err := conn.WriteTo([]byte(req), dst); err != nil {
			t.Fatalf("probe %s at %s: %v", p.name, addr, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := conn.ReadFrom(buf)
		if err == nil && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 ")) {
			line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
			t.Logf("%s is up on %s (OPTIONS: %s)", p.name, addr, line)
			return
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			time.Sleep(100 * time.Millisecond) // e.g. ICMP port unreachable: not bound yet
		}
	}
	t.Fatalf("%s did not answer SIP OPTIONS on %s within 15 s\n%s", p.name, addr, p.out.String())
}

// waitOutput blocks until the peer's output contains s, up to d.
func (p *peer) waitOutput(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if strings.Contains(p.out.String(), s) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
