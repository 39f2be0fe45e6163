//go:build linux

package interop

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
)

//go:embed testdata/kamailio.cfg.tmpl
var kamailioCfg string

// kamailioConfig fills testdata/kamailio.cfg.tmpl.
type kamailioConfig struct {
	Port                int    // UDP port kamailio listens on (127.0.0.1)
	Carrier             string // host:port authenticated INVITEs are relayed to
	Realm               string
	Username, Password  string // the only credentials accepted
	NonceSecret         string
	RejectWrongPassword bool // 403 on wrong credentials instead of a new 407
}

// startKamailio writes the configuration into a temporary directory, starts
// kamailio in the foreground and waits until it answers SIP.
func startKamailio(t *testing.T, kc kamailioConfig) (*peer, string) {
	t.Helper()
	bin := requireBinary(t, "kamailio", "kamailio")
	dir := t.TempDir()
	kc.Port = freePort(t)
	kc.NonceSecret = fmt.Sprintf("interop-%d", time.Now().UnixNano())
	path := filepath.Join(dir, "kamailio.cfg")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := template.Must(template.New("kamailio").Parse(kamailioCfg)).Execute(f, kc); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// -DD: no daemon (children still fork); -E: log to stderr; -Y: runtime
	// files in the temp dir; small memory pools.
	p := startPeer(t, "kamailio", bin, "-f", path, "-DD", "-E", "-Y", dir, "-m", "32", "-M", "4")
	addr := fmt.Sprintf("127.0.0.1:%d", kc.Port)
	p.waitSIP(t, addr)
	return p, addr
}

// A call through kamailio is challenged with 407, authenticated with the
// trunk's credentials, record-routed and relayed to the carrier, and its
// audio reaches the carrier.
func TestKamailioDigestProxyAuthenticates(t *testing.T) {
	s := startSim(t)
	k, addr := startKamailio(t, kamailioConfig{Carrier: s.Addr().String(), Realm: "interop.test",
		Username: "vms", Password: "s3cret-interop"})
	r := newRig(t, func(c *config.Config) {
		c.Trunks[0].URI = "sip:" + addr
		c.Trunks[0].Username, c.Trunks[0].Password = "vms", "s3cret-interop"
	})

	// The simulator answers numbers ending in 00 and holds the call.
	rec, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: "+8613800138000", Code: "4821", PlayTimes: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := r.wait(t, rec.ID, 30*time.Second)
	if got.Status != queue.StatusCompleted || got.SIPCode != 200 || !got.PlayedToEnd {
		t.Fatalf("record: status %s %d (%s), played to end %v; want completed 200 played to end",
			got.Status, got.SIPCode, got.Reason, got.PlayedToEnd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls, err := s.WaitEnded(ctx, 1)
	if err != nil {
		t.Fatalf("the carrier behind kamailio saw no call end: %v", err)
	}
	sc := calls[0]
	if sc.To != "+8613800138000" || sc.FinalCode != 200 {
		t.Errorf("carrier call: to %q final %d, want +8613800138000 200", sc.To, sc.FinalCode)
	}
	if sc.RTP.Packets == 0 {
		t.Errorf("the carrier received no RTP through the authenticated call")
	}
	if sc.HungUpBy != "caller" {
		t.Errorf("carrier saw the call hung up by %q, want the caller's BYE (relayed by kamailio)", sc.HungUpBy)
	}
	if n := s.Invites(); n != 1 {
		t.Errorf("carrier received %d INVITEs, want 1 (kamailio consumes the challenge)", n)
	}
	// The proxy really challenged, then relayed the authenticated INVITE.
	if !k.waitOutput("interop: authenticated INVITE for +8613800138000", 2*time.Second) {
		t.Errorf("kamailio did not log the authenticated INVITE")
	}
	if n := strings.Count(k.out.String(), "interop: challenge for"); n != 1 {
		t.Errorf("kamailio challenged %d times, want 1", n)
	}
	if !k.waitOutput("interop: in-dialog BYE relayed", 2*time.Second) {
		t.Errorf("the BYE did not follow kamailio's Record-Route")
	}
	if n := r.worker.Dialer.RTPPortsInUse(); n != 0 {
		t.Errorf("%d RTP ports still held after the call", n)
	}
	t.Logf("completed through kamailio: billable %d ms, audio %d ms, carrier received %d RTP packets",
		got.BillableMS, got.AudioMS, sc.RTP.Packets)
}

// A wrong password ends the message as an authentication failure, quickly,
// whether the proxy challenges again (407) or refuses (403).
func TestKamailioWrongPasswordIsAuthFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reject bool
		code   int
	}{
		{"challenged again", false, 407},
		{"forbidden", true, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t)
			k, addr := startKamailio(t, kamailioConfig{Carrier: s.Addr().String(), Realm: "interop.test",
				Username: "vms", Password: "s3cret-interop", RejectWrongPassword: tc.reject})
			r := newRig(t, func(c *config.Config) {
				c.Trunks[0].URI = "sip:" + addr
				c.Trunks[0].Username, c.Trunks[0].Password = "vms", "wrong-password"
			})
			start := time.Now()
			rec, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: "+8613800138000", Code: "1234"})
			if err != nil {
				t.Fatal(err)
			}
			got := r.wait(t, rec.ID, 20*time.Second)
			took := time.Since(start)
			t.Logf("wrong password: status %s %d after %s: %s", got.Status, got.SIPCode, took.Round(time.Millisecond), got.Reason)
			if got.Status != queue.StatusFailed || got.SIPCode != tc.code {
				t.Errorf("status %s %d, want failed %d", got.Status, got.SIPCode, tc.code)
			}
			if !strings.Contains(got.Reason, "password") && !strings.Contains(got.Reason, "credentials") {
				t.Errorf("reason %q does not point at the trunk's credentials", got.Reason)
			}
			if took > 10*time.Second {
				t.Errorf("the auth failure took %s; want it well under the ring timeout, not a hang", took)
			}
			if got.BillableMS != 0 {
				t.Errorf("failed call billed %d ms", got.BillableMS)
			}
			if n := s.Invites(); n != 0 {
				t.Errorf("the carrier behind kamailio received %d INVITEs, want none", n)
			}
			if c := s.Calls(); len(c) != 0 {
				t.Errorf("carrier has %d calls, want none", len(c))
			}
			if !k.waitOutput("interop: challenge for", time.Second) {
				t.Errorf("kamailio never challenged the INVITE")
			}
			if n := r.worker.Dialer.RTPPortsInUse(); n != 0 {
				t.Errorf("%d RTP ports still held after the call", n)
			}
		})
	}
}
