package sim_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/telephony/sim"
)

func startSim(t *testing.T, cfg sim.Config) *sim.Simulator {
	t.Helper()
	if os.Getenv("SIM_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := sim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func waitOne(t *testing.T, s *sim.Simulator) sim.CallRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := s.WaitEnded(ctx, 1)
	if err != nil {
		t.Fatalf("WaitEnded: %v (calls: %+v)", err, s.Calls())
	}
	return recs[0]
}

func TestSimAnswerRecordsRTP(t *testing.T) {
	dir := t.TempDir()
	s := startSim(t, sim.Config{RecordDir: dir})
	u := newUAC(t)
	media := newRTPPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := u.invite(ctx, s.Addr(), "+8613800000000", media, callOpts{})
	if c.err != nil {
		t.Fatalf("answer scenario failed: %v", c.err)
	}
	if c.answer.Refused() || len(c.answer.Formats) == 0 || c.answer.Formats[0] != telephony.FormatPCMU {
		t.Fatalf("answer SDP = %+v, want PCMU first", c.answer)
	}
	audio, dtmf, err := telephony.Negotiate([]telephony.Format{telephony.FormatPCMU, telephony.FormatPCMA, telephony.FormatTelephoneEvent}, c.answer.Formats)
	if err != nil || audio != telephony.FormatPCMU || dtmf == nil {
		t.Fatalf("Negotiate = %v %v %v", audio, dtmf, err)
	}

	sent := media.send(t, c.answer.Addr, 0, 50, 20*time.Millisecond)
	if err := c.dialog.Bye(ctx); err != nil {
		t.Fatalf("bye: %v", err)
	}
	rec := waitOne(t, s)

	if rec.FinalCode != 200 || rec.HungUpBy != "caller" || rec.Canceled {
		t.Errorf("record = code %d hung up by %q canceled %v; want 200 caller false", rec.FinalCode, rec.HungUpBy, rec.Canceled)
	}
	if rec.To != "+8613800000000" || rec.From != "sipgo" || rec.Scenario != "answer" {
		t.Errorf("record from/to/scenario = %q %q %q", rec.From, rec.To, rec.Scenario)
	}
	if rec.Codec != "PCMU" || rec.PayloadType != 0 {
		t.Errorf("codec = %s/%d", rec.Codec, rec.PayloadType)
	}
	st := rec.RTP
	if st.Packets != 50 || st.SeqGaps != 0 || st.OutOfOrder != 0 || st.Markers != 1 || st.SSRCs != 1 {
		t.Errorf("rtp stats = %+v; want 50 packets, no gaps, in order, 1 marker, 1 SSRC", st)
	}
	if want := map[uint32]int{160: 49}; !maps.Equal(st.TimestampSteps, want) {
		t.Errorf("timestamp steps = %v, want %v", st.TimestampSteps, want)
	}
	if want := map[uint8]int{0: 50}; !maps.Equal(st.PayloadTypes, want) {
		t.Errorf("payload types = %v, want %v", st.PayloadTypes, want)
	}
	if st.JitterMS < 0 || st.JitterMS > 20 {
		t.Errorf("jitter = %.2f ms, implausible for 20 ms pacing on loopback", st.JitterMS)
	}
	if !bytes.Equal(rec.Payload, sent) {
		t.Errorf("payload: got %d bytes, sent %d; bytes differ", len(rec.Payload), len(sent))
	}
	if rec.DurationMS < 900 || rec.DurationMS > 5000 {
		t.Errorf("duration = %d ms, want about 1 s of media", rec.DurationMS)
	}
	if rec.AnsweredAt.Before(rec.InviteAt) || rec.EndedAt.Before(rec.AnsweredAt) {
		t.Errorf("timestamps out of order: %v %v %v", rec.InviteAt, rec.AnsweredAt, rec.EndedAt)
	}

	// The simulator sent silence to our SDP address in the negotiated codec.
	got, pts := media.count()
	if got < 20 || pts[0] != got {
		t.Errorf("received %d RTP packets from the simulator (by PT %v), want about 50 PCMU", got, pts)
	}

	checkWAV(t, rec.WAVPath, len(sent))
	var summary map[string]any
	b, err := os.ReadFile(rec.SummaryPath)
	if err != nil {
		t.Fatalf("summary: %v", err)
	}
	if err := json.Unmarshal(b, &summary); err != nil {
		t.Fatalf("summary JSON: %v", err)
	}
	if summary["call_id"] != rec.CallID || summary["final_code"] != float64(200) {
		t.Errorf("summary = %s", b)
	}
	if _, ok := summary["rtp"].(map[string]any)["timestamp_steps"]; !ok {
		t.Errorf("summary lacks rtp stats: %s", b)
	}
	if s.Invites() != 1 || s.Cancels() != 0 || len(s.Calls()) != 1 {
		t.Errorf("invites %d cancels %d calls %d", s.Invites(), s.Cancels(), len(s.Calls()))
	}
}

// checkWAV checks a 16-bit 8 kHz mono WAV file holding samples samples.
func checkWAV(t *testing.T, path string, samples int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("wav: %v", err)
	}
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" || string(b[12:16]) != "fmt " || string(b[36:40]) != "data" {
		t.Fatalf("wav header malformed: % x", b[:min(len(b), 44)])
	}
	le16 := func(o int) int { return int(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) int { return int(binary.LittleEndian.Uint32(b[o:])) }
	if le16(20) != 1 || le16(22) != 1 || le32(24) != 8000 || le16(34) != 16 || le32(28) != 16000 || le16(32) != 2 {
		t.Errorf("wav fmt: format %d channels %d rate %d bits %d", le16(20), le16(22), le32(24), le16(34))
	}
	if le32(40) != 2*samples || len(b) != 44+2*samples || le32(4) != 36+2*samples {
		t.Errorf("wav data length %d (file %d), want %d", le32(40), len(b), 2*samples)
	}
}

func TestSimPCMAPreferredByCaller(t *testing.T) {
	s := startSim(t, sim.Config{})
	u := newUAC(t)
	media := newRTPPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := u.invite(ctx, s.Addr(), "5550100", media, callOpts{formats: []telephony.Format{
		{PT: 18, Name: "G729", Rate: 8000}, telephony.FormatPCMA, telephony.FormatPCMU,
	}})
	if c.err != nil {
		t.Fatal(c.err)
	}
	if len(c.answer.Formats) != 1 || c.answer.Formats[0] != telephony.FormatPCMA {
		t.Fatalf("answer formats = %v, want PCMA only (no telephone-event offered)", c.answer.Formats)
	}
	sent := media.send(t, c.answer.Addr, 8, 10, 0)
	if err := c.dialog.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	rec := waitOne(t, s)
	if rec.Codec != "PCMA" || rec.PayloadType != 8 || !bytes.Equal(rec.Payload, sent) {
		t.Errorf("record codec %s/%d payload %d bytes", rec.Codec, rec.PayloadType, len(rec.Payload))
	}
}

func TestSimNoCommonCodec(t *testing.T) {
	s := startSim(t, sim.Config{})
	u := newUAC(t)
	media := newRTPPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := u.invite(ctx, s.Addr(), "5550100", media, callOpts{formats: []telephony.Format{{PT: 18, Name: "G729", Rate: 8000}}})
	if code := finalCode(c.err); code != 488 {
		t.Fatalf("final = %d (%v), want 488", code, c.err)
	}
	if rec := waitOne(t, s); rec.FinalCode != 488 {
		t.Errorf("record final code = %d", rec.FinalCode)
	}
}

func TestSimFailureScenarios(t *testing.T) {
	s := startSim(t, sim.Config{Scenarios: map[string]sim.Scenario{"busy-line": {Kind: "busy"}}})
	u := newUAC(t)
	media := newRTPPeer(t)
	cases := []struct {
		number string
		code   int
	}{
		{"+8613800000001", 486},
		{"+8613800000003", 603},
		{"+8613800000004", 404},
		{"+8613800000005", 503},
		{"busy-line", 486},
	}
	for i, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c := u.invite(ctx, s.Addr(), tc.number, media, callOpts{})
		cancel()
		if code := finalCode(c.err); code != tc.code {
			t.Errorf("%s: final = %d (%v), want %d", tc.number, code, c.err, tc.code)
		}
		c.dialog.Close()
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		recs, err := s.WaitEnded(ctx, i+1)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if rec := recs[i]; rec.FinalCode != tc.code || rec.To != tc.number || !rec.AnsweredAt.IsZero() || rec.HungUpBy != "" {
			t.Errorf("%s: record %+v", tc.number, rec)
		}
	}
}

func TestSimRingThenCancel(t *testing.T) {
	s := startSim(t, sim.Config{})
	u := newUAC(t)
	media := newRTPPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	callCtx, hangUp := context.WithCancel(ctx)
	defer hangUp()
	c := u.invite(callCtx, s.Addr(), "+8613800000002", media, callOpts{onResponse: func(code int) {
		if code == 180 {
			time.AfterFunc(200*time.Millisecond, hangUp)
		}
	}})
	if !errors.Is(c.err, context.Canceled) {
		t.Fatalf("WaitAnswer = %v, want context.Canceled", c.err)
	}
	// WaitAnswer reads the 487 after its CANCEL without OnResponse.
	if res := c.dialog.InviteResponse; res == nil || res.StatusCode != 487 {
		t.Errorf("last INVITE response = %v, want 487", res)
	}
	if _, ok := c.at[180]; !ok {
		t.Errorf("no 180 Ringing: %v", c.responses)
	}
	rec := waitOne(t, s)
	if rec.FinalCode != 487 || !rec.Canceled || rec.Scenario != "ring" {
		t.Errorf("record = %+v, want 487 canceled", rec)
	}
	if s.Cancels() != 1 {
		t.Errorf("cancels = %d, want 1", s.Cancels())
	}
}

func TestSimChallenge(t *testing.T) {
	s := startSim(t, sim.Config{Username: "trunk1", Password: "s3cret", Realm: "carrier.test"})
	u := newUAC(t)
	media := newRTPPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := u.invite(ctx, s.Addr(), "+8613800000007", media, callOpts{username: "trunk1", password: "s3cret"})
	if c.err != nil {
		t.Fatalf("right credentials: %v (responses %v)", c.err, c.responses)
	}
	if c.responses[0] != 401 && !containsCode(c.responses, 401) {
		t.Errorf("responses = %v, want a 401 first", c.responses)
	}
	if err := c.dialog.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	rec := waitOne(t, s)
	if rec.FinalCode != 200 || rec.Scenario != "challenge" || rec.HungUpBy != "caller" {
		t.Errorf("record = %+v", rec)
	}
	if s.Invites() != 2 || len(s.Calls()) != 1 {
		t.Errorf("invites = %d calls = %d, want 2 INVITEs for 1 call", s.Invites(), len(s.Calls()))
	}

	c = u.invite(ctx, s.Addr(), "+8613800000007", media, callOpts{username: "trunk1", password: "wrong"})
	if code := finalCode(c.err); code != 403 {
		t.Fatalf("wrong credentials: final %d (%v), want 403", code, c.err)
	}
	c.dialog.Close()
	recs, err := s.WaitEnded(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if recs[1].FinalCode != 403 {
		t.Errorf("record = %+v, want 403", recs[1])
	}
}

func containsCode(codes []int, code int) bool {
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}

func TestSimHangupByCallee(t *testing.T) {
	s := startSim(t, sim.Config{Scenarios: map[string]sim.Scenario{"short": {Kind: "hangup", After: time.Second}}})
	u := newUAC(t)
	media := newRTPPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := u.invite(ctx, s.Addr(), "short", media, callOpts{})
	if c.err != nil {
		t.Fatal(c.err)
	}
	answered := c.at[200]
	select {
	case at := <-u.byes:
		if d := at.Sub(answered); d < 900*time.Millisecond || d > 2*time.Second {
			t.Errorf("BYE %v after the 200 OK, want about 1 s", d)
		}
	case <-ctx.Done():
		t.Fatal("no BYE from the simulator")
	}
	rec := waitOne(t, s)
	if rec.HungUpBy != "callee" || rec.FinalCode != 200 || rec.Scenario != "hangup:1s" {
		t.Errorf("record = %+v", rec)
	}
	if rec.DurationMS < 950 || rec.DurationMS > 1500 {
		t.Errorf("duration = %d ms, want about 1000", rec.DurationMS)
	}
}

func TestSimEarlyMedia(t *testing.T) {
	s := startSim(t, sim.Config{Scenarios: map[string]sim.Scenario{"early": {Kind: "early", After: 300 * time.Millisecond}}})
	u := newUAC(t)
	media := newRTPPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := u.invite(ctx, s.Addr(), "early", media, callOpts{})
	if c.err != nil {
		t.Fatal(c.err)
	}
	if c.early == nil || c.early.Addr != c.answer.Addr {
		t.Fatalf("183 SDP = %+v, want the same media as the 200 (%v)", c.early, c.answer.Addr)
	}
	if d := c.at[200].Sub(c.at[183]); d < 250*time.Millisecond {
		t.Errorf("200 came %v after 183, want about 300 ms", d)
	}
	if n, _ := media.count(); n == 0 {
		t.Errorf("no early media from the simulator")
	}
	if err := c.dialog.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := waitOne(t, s); rec.FinalCode != 200 || rec.HungUpBy != "caller" {
		t.Errorf("record = %+v", rec)
	}
}

func TestSimOptions(t *testing.T) {
	s := startSim(t, sim.Config{})
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: s.Addr().Addr().String(), Port: int(s.Addr().Port())})
	res, err := u.cli.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS = %v, %v", res, err)
	}
}

func TestSimCloseEndsCallsAndLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		s, err := sim.Start(context.Background(), sim.Config{RecordDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		u := newUAC(t)
		media := newRTPPeer(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		c := u.invite(ctx, s.Addr(), "+15550000000", media, callOpts{})
		if c.err != nil {
			t.Fatal(c.err)
		}
		media.send(t, c.answer.Addr, 0, 5, 0)
		// A second call still ringing when the simulator closes.
		ringing := make(chan *call, 1)
		go func() {
			ringing <- u.invite(ctx, s.Addr(), "+15550000002", media, callOpts{})
		}()
		deadline := time.Now().Add(5 * time.Second)
		for len(s.Calls()) < 2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)

		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case <-u.byes:
		case <-time.After(3 * time.Second):
			t.Error("answered call got no BYE on Close")
		}
		rc := <-ringing
		if code := finalCode(rc.err); code != 480 {
			t.Errorf("ringing call ended with %d (%v), want 480", code, rc.err)
		}
		rc.dialog.Close()
		recs := s.Calls()
		if len(recs) != 2 || !recs[0].Ended() || !recs[1].Ended() {
			t.Fatalf("calls after Close: %+v", recs)
		}
		if recs[0].HungUpBy != "callee" || recs[0].RTP.Packets != 5 || recs[1].FinalCode != 480 {
			t.Errorf("records = %+v", recs)
		}
		if _, err := s.WaitEnded(ctx, 3); err == nil {
			t.Error("WaitEnded(3) after Close succeeded")
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		// Close the test UAC too before counting.
		media.close()
		u.close()
	}()

	var now int
	for i := 0; i < 100; i++ {
		now = runtime.NumGoroutine()
		if now <= before {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	t.Errorf("goroutines: %d before, %d after Close\n%s", before, now, buf[:n])
}

func TestSimCancelDuringEarlyMedia(t *testing.T) {
	s := startSim(t, sim.Config{Scenarios: map[string]sim.Scenario{"early": {Kind: "early", After: 5 * time.Second}}})
	u := newUAC(t)
	media := newRTPPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	callCtx, giveUp := context.WithCancel(ctx)
	defer giveUp()
	c := u.invite(callCtx, s.Addr(), "early", media, callOpts{onResponse: func(code int) {
		if code == 183 {
			time.AfterFunc(300*time.Millisecond, giveUp)
		}
	}})
	if !errors.Is(c.err, context.Canceled) {
		t.Fatalf("WaitAnswer = %v, want context.Canceled", c.err)
	}
	rec := waitOne(t, s)
	if rec.FinalCode != 487 || !rec.Canceled || !rec.AnsweredAt.IsZero() {
		t.Errorf("record = %+v, want 487 canceled, never answered", rec)
	}
	if n, _ := media.count(); n == 0 {
		t.Errorf("no early media before the CANCEL")
	}
}

func TestSimChallengeWithoutCredentials(t *testing.T) {
	s := startSim(t, sim.Config{})
	u := newUAC(t)
	media := newRTPPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := u.invite(ctx, s.Addr(), "5550107", media, callOpts{})
	if code := finalCode(c.err); code != 401 {
		t.Fatalf("final = %d (%v), want 401", code, c.err)
	}
	c.dialog.Close()
	if rec := waitOne(t, s); rec.FinalCode != 401 {
		t.Errorf("record = %+v, want 401", rec)
	}
}
