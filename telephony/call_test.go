package telephony_test

import (
	"context"
	"math"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vms-project/vms/queue"
	. "github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/telephony/sim"
	"github.com/vms-project/vms/tts"
)

func TestMain(m *testing.M) {
	// T1 = 100 ms makes Timer B (64·T1, "no response at all") 6.4 s instead
	// of 32 s. Set before any transaction exists: sipgo keeps it in globals.
	sip.SetTimers(100*time.Millisecond, 4*time.Second, 5*time.Second)
	os.Exit(m.Run())
}

// tone returns d of a 440 Hz tone as G.711 audio.
func tone(codec tts.Codec, d time.Duration) *tts.Audio {
	n := int(d / time.Second * tts.SampleRate)
	if n == 0 {
		n = int(d.Seconds() * tts.SampleRate)
	}
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/tts.SampleRate))
	}
	return &tts.Audio{Codec: codec, Payload: tts.Encode(pcm, codec)}
}

type testRig struct {
	sim    *sim.Simulator
	dialer *Dialer
	trunk  Trunk
}

func newTestRig(t *testing.T, scenarios map[string]string) *testRig {
	t.Helper()
	return rigWith(t, startSim(t, sim.Config{}, scenarios), Config{Listen: "127.0.0.1:0", RTPPortMin: 31000, RTPPortMax: 39999})
}

// rigWith is a dialer of cfg calling the simulator s over UDP.
func rigWith(t *testing.T, s *sim.Simulator, cfg Config) *testRig {
	t.Helper()
	d, err := NewDialer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	tr := Trunk{Name: "sim", URI: sip.Uri{Host: s.Addr().Addr().String(), Port: int(s.Addr().Port())},
		Transport: "udp", Codecs: []tts.Codec{tts.PCMU, tts.PCMA}}
	return &testRig{sim: s, dialer: d, trunk: tr}
}

func (r *testRig) call(t *testing.T, to string, audio time.Duration, edit func(*CallRequest)) Result {
	t.Helper()
	req := CallRequest{MessageID: "m-" + to, To: to, Trunk: r.trunk,
		Audio:       map[tts.Codec]*tts.Audio{tts.PCMU: tone(tts.PCMU, audio), tts.PCMA: tone(tts.PCMA, audio)},
		RingTimeout: 3 * time.Second, MaxDuration: 20 * time.Second}
	if edit != nil {
		edit(&req)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := r.dialer.Call(ctx, req)
	t.Logf("%s: %s %d %q keys=%v sent=%d received=%d billable=%d", to, res.Status, res.SIPCode, res.Reason, res.Keys, res.PacketsSent, res.PacketsReceived, res.BillableMS)
	return res
}

func (r *testRig) simCall(t *testing.T, to string) sim.CallRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range r.sim.Calls() {
			if c.To == to && c.Ended() {
				return c
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("simulator has no ended call to %s", to)
	return sim.CallRecord{}
}

func keysOf(ks []queue.KeyPress) string {
	var b strings.Builder
	for _, k := range ks {
		b.WriteString(k.Key)
	}
	return b.String()
}

func TestDTMFReceived(t *testing.T) {
	r := newTestRig(t, map[string]string{
		"+100": "answer;dtmf=1#9@300ms",
		"+101": "answer;info=7*@300ms",
	})
	res := r.call(t, "+100", 2*time.Second, nil)
	if got := keysOf(res.Keys); got != "1#9" || res.Keys[0].Via != "rfc4733" {
		t.Fatalf("RFC 4733 keys %q (%v), want 1#9 each once", got, res.Keys)
	}
	res = r.call(t, "+101", 2*time.Second, nil)
	if got := keysOf(res.Keys); got != "7*" || res.Keys[0].Via != "info" {
		t.Fatalf("INFO keys %q, want 7*", got)
	}
	if c := r.simCall(t, "+101"); c.Events[sim.EventInfo] != 200 {
		t.Fatalf("INFO answered %d, want 200", c.Events[sim.EventInfo])
	}
	for i := 1; i < len(res.Keys); i++ {
		if res.Keys[i].At.Before(res.Keys[i-1].At) {
			t.Fatal("keys out of time order")
		}
	}
}

func TestKeyActions(t *testing.T) {
	r := newTestRig(t, map[string]string{
		"+200": "answer;dtmf=5@500ms",
		"+201": "answer;dtmf=1@300ms",
		"+202": "answer;dtmf=9@300ms",
	})
	actions := map[string]string{"5": KeyRepeat, "1": KeyConfirm, "9": KeyOptOut}
	withActions := func(req *CallRequest) {
		req.Actions = actions
		req.Ack = map[tts.Codec]*tts.Audio{tts.PCMU: tone(tts.PCMU, 400*time.Millisecond)}
	}
	// repeat: the 1 s message restarts at ~0.5 s, so about 1.5 s is sent.
	res := r.call(t, "+200", time.Second, withActions)
	if !res.PlayedToEnd || res.PacketsSent < 70 || res.PacketsSent > 90 {
		t.Fatalf("repeat: %d packets sent, played to end %v; want ~75 (replayed from the start)", res.PacketsSent, res.PlayedToEnd)
	}
	// confirm: the 3 s message stops at ~0.3 s; the 0.4 s acknowledgement plays; vms hangs up.
	res = r.call(t, "+201", 3*time.Second, withActions)
	if !res.Confirmed || res.HungUpBy != "caller" || res.BillableMS > 1500 || res.Status != queue.StatusCompleted {
		t.Fatalf("confirm: %+v", res)
	}
	// optout: hang up at once, recorded.
	res = r.call(t, "+202", 3*time.Second, withActions)
	if !res.OptedOut || res.BillableMS > 1000 || res.PlayedToEnd {
		t.Fatalf("optout: %+v", res)
	}
}

func TestReinviteAndUpdateAnswered(t *testing.T) {
	r := newTestRig(t, map[string]string{"+300": "answer;reinvite@300ms;update@600ms"})
	res := r.call(t, "+300", 1500*time.Millisecond, nil)
	if res.Status != queue.StatusCompleted || !res.PlayedToEnd {
		t.Fatalf("call with re-INVITE/UPDATE: %+v", res)
	}
	c := r.simCall(t, "+300")
	if c.Events[sim.EventReinvite] != 200 || c.Events[sim.EventUpdate] != 200 {
		t.Fatalf("re-INVITE/UPDATE answered %v, want 200 each", c.Events)
	}
	if c.RTP.SeqGaps != 0 || c.RTP.SSRCs != 1 {
		t.Fatalf("media disturbed by the refresh: %+v", c.RTP)
	}
}

func TestSymmetricRTP(t *testing.T) {
	r := newTestRig(t, map[string]string{"+400": "answer;sdp=nat"})
	res := r.call(t, "+400", 2*time.Second, nil)
	c := r.simCall(t, "+400")
	// Until the first packet from the callee arrives our audio goes to the
	// SDP's (wrong) port; afterwards to the real source.
	if res.Status != queue.StatusCompleted || c.RTP.Packets < res.PacketsSent-10 {
		t.Fatalf("simulator got %d of %d packets: vms did not latch onto the callee's RTP source", c.RTP.Packets, res.PacketsSent)
	}
}

func TestMediaTimeout(t *testing.T) {
	r := newTestRig(t, map[string]string{"+500": "answer;silent", "+501": "answer"})
	timeout := func(req *CallRequest) { req.MediaTimeout = 700 * time.Millisecond }
	res := r.call(t, "+500", 5*time.Second, timeout)
	if res.Status != queue.StatusMediaTimeout || res.BillableMS > 2000 || !strings.Contains(res.Reason, "media_timeout") {
		t.Fatalf("silent callee: %+v, want media_timeout after ~0.7 s", res)
	}
	// A callee that sends media is not cut off.
	res = r.call(t, "+501", 1500*time.Millisecond, timeout)
	if res.Status != queue.StatusCompleted || !res.PlayedToEnd {
		t.Fatalf("callee with media: %+v", res)
	}
}

func TestBadCarrierInput(t *testing.T) {
	r := newTestRig(t, map[string]string{
		"+600": "answer;sdp=bad",
		"+601": "answer;sdp=g729",
		"+602": "answer;sdp=refuse",
		"+603": "answer;sdp=none",
		"+604": "answer;garbage@200ms",
		"+605": "blackhole",
		"+606": "answer;fail=503x1",
	})
	before := runtime.NumGoroutine()
	for _, to := range []string{"+600", "+601", "+602", "+603"} {
		res := r.call(t, to, time.Second, nil)
		if res.Status != queue.StatusFailed || !strings.Contains(res.Reason, "no common codec") || res.HungUpBy != "caller" {
			t.Errorf("%s: %s (%s) hung up by %q; want failed, no common codec, BYE sent", to, res.Status, res.Reason, res.HungUpBy)
		}
	}
	res := r.call(t, "+604", time.Second, nil)
	if res.Status != queue.StatusCompleted || !res.PlayedToEnd {
		t.Errorf("garbage RTP: %+v", res)
	}
	start := time.Now()
	res = r.call(t, "+605", time.Second, nil)
	if res.Status != queue.StatusUnreachable || time.Since(start) > 10*time.Second {
		t.Errorf("carrier that never answers: %s after %s, want unreachable after Timer B", res.Status, time.Since(start))
	}
	res = r.call(t, "+606", time.Second, nil)
	if res.Status != queue.StatusUnreachable || res.SIPCode != 503 {
		t.Errorf("first call to a failing carrier: %s %d", res.Status, res.SIPCode)
	}
	res = r.call(t, "+606", time.Second, nil)
	if res.Status != queue.StatusCompleted {
		t.Errorf("after recovery: %s %d", res.Status, res.SIPCode)
	}

	// A response for a transaction that never existed is dropped.
	conn, err := net.Dial("udp", r.dialer.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	stray := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKnothere\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	_, _ = conn.Write([]byte(stray))
	_, _ = conn.Write([]byte("\x00\x01garbage that is not SIP"))
	conn.Close()
	res = r.call(t, "+601", time.Second, nil) // the dialer still works
	if res.Status != queue.StatusFailed {
		t.Errorf("after stray input: %s", res.Status)
	}

	if n := r.dialer.RTPPortsInUse(); n != 0 {
		t.Errorf("%d RTP ports still held", n)
	}
	if calls := r.dialer.ActiveCalls(); calls != 0 {
		t.Errorf("%d calls still tracked", calls)
	}
	// Goroutines come back to where they were (sipgo's transactions end on timers).
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestDigestAuthUsernameAndRealm(t *testing.T) {
	r := newTestRig(t, map[string]string{"+700": "challenge"})
	// The simulator's credentials are vms/secret in realm carrier-sim.
	r.trunk.Username, r.trunk.AuthUsername, r.trunk.Password = "account-7", "vms", "secret"
	if res := r.call(t, "+700", 500*time.Millisecond, nil); res.Status != queue.StatusCompleted {
		t.Fatalf("auth_username: %s %d %s", res.Status, res.SIPCode, res.Reason)
	}
	invites := r.sim.Invites()
	r.trunk.Realm = "elsewhere"
	res := r.call(t, "+700", 500*time.Millisecond, nil)
	if res.Status != queue.StatusFailed || res.SIPCode != 401 || !strings.Contains(res.Reason, `realm "carrier-sim"`) {
		t.Fatalf("realm mismatch: %s %d %s", res.Status, res.SIPCode, res.Reason)
	}
	if n := r.sim.Invites() - invites; n != 1 {
		t.Fatalf("%d INVITEs for a challenge of the wrong realm, want 1 (no credentials sent)", n)
	}
}
