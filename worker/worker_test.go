package worker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/internal/testutil"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony/sim"
	"github.com/vms-project/vms/tts"
)

// rig is one hermetic deployment: a private redis-server, the carrier
// simulator on a free loopback port, and a worker dialling into it.
type rig struct {
	cfg    *config.Config
	sim    *sim.Simulator
	worker *Worker
	q      *queue.Client
}

func newRig(t *testing.T, edit func(*config.Config)) *rig {
	t.Helper()
	return newRigScenarios(t, nil, edit)
}

// newRigScenarios is newRig with simulator scenarios by called number.
func newRigScenarios(t *testing.T, scenarios map[string]string, edit func(*config.Config)) *rig {
	t.Helper()
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return newRigLog(t, scenarios, edit, log)
}

// newRigLog is newRigScenarios with the worker logging to log.
func newRigLog(t *testing.T, scenarios map[string]string, edit func(*config.Config), log *slog.Logger) *rig {
	t.Helper()
	redis := redistest.Start(t)
	table := map[string]sim.Scenario{}
	for number, text := range scenarios {
		sc, err := sim.ParseScenario(text)
		if err != nil {
			t.Fatal(err)
		}
		table[number] = sc
	}
	s, err := sim.Start(context.Background(), sim.Config{Listen: "127.0.0.1:0", RecordDir: t.TempDir(), Scenarios: table})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	cfg := config.Defaults()
	cfg.Policy.HMACSecret = "test-secret-0123456789"
	cfg.Redis.URL = redis.URL
	cfg.Trunks[0].URI = "sip:" + s.Addr().String()
	cfg.TTS.CacheDir = cacheDir.Path(t)
	cfg.Call.RingTimeout = config.Duration(2 * time.Second)
	cfg.Call.RepeatPause = config.Duration(300 * time.Millisecond)
	cfg.Worker.DrainTimeout = config.Duration(10 * time.Second)
	cfg.Worker.JournalDir = t.TempDir()
	// The simulator's numbers are called many times, at any hour.
	cfg.Policy.DisableLimits()
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.Client(t)
	w, err := New(cfg, rdb, log)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{cfg: cfg, sim: s, worker: w, q: NewQueueClient(cfg, rdb)}
	t.Cleanup(func() { _ = r.q.Close() })
	return r
}

func (r *rig) start(t *testing.T) {
	t.Helper()
	if err := r.worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.worker.Shutdown)
}

// wait blocks until the message is terminal.
func (r *rig) wait(t *testing.T, id string, d time.Duration) *queue.Record {
	t.Helper()
	rec, _ := r.waitStates(t, id, d)
	return rec
}

// waitStates is wait that also returns every state the message went through.
func (r *rig) waitStates(t *testing.T, id string, d time.Duration) (*queue.Record, []queue.Status) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var seen []queue.Status
	rec, err := r.q.Watch(ctx, id, func(e queue.Event) { seen = append(seen, e.Status) })
	if err != nil {
		t.Fatalf("message %s did not finish in %s (states %v): %v", id, d, seen, err)
	}
	t.Logf("message %s: states %v", id, seen)
	return rec, seen
}

// cacheDir lets the tests of this package share rendered audio, as workers
// of one deployment do.
var cacheDir = testutil.SharedDir{Prefix: "vms-tts-cache-"}

func TestMain(m *testing.M) { os.Exit(cacheDir.Run(m)) }

func TestCodeCallEndToEnd(t *testing.T) {
	r := newRig(t, nil)
	r.start(t)
	rec, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: "+8613800138000", Code: "4821", PlayTimes: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, states := r.waitStates(t, rec.ID, 30*time.Second)
	calls, err := r.sim.WaitEnded(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	sc := calls[0]
	if want := []queue.Status{queue.StatusQueued, queue.StatusDialing, queue.StatusRinging, queue.StatusAnswered, queue.StatusCompleted}; !slices.Equal(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}

	if got.Status != queue.StatusCompleted || got.SIPCode != 200 || got.HungUpBy != "caller" || !got.PlayedToEnd {
		t.Fatalf("record = %+v, want completed 200 hung up by caller, played to end", got)
	}
	// The audio the worker played, rendered again by its render path (from
	// the cached prefix and digit clips). The finished record no longer has
	// the code.
	m := got.Message
	m.Code = "4821"
	msg, err := r.worker.Handler.render(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	audio := msg.audio[tts.PCMU]
	wantPackets := audio.Frames() // = ceil(audio_ms / 20)
	st := sc.RTP
	if d := st.Packets - wantPackets; d < -1 || d > 1 {
		t.Errorf("simulator received %d packets, want %d ±1", st.Packets, wantPackets)
	}
	if st.SeqGaps != 0 || st.OutOfOrder != 0 {
		t.Errorf("sequence gaps %d, out of order %d; want none", st.SeqGaps, st.OutOfOrder)
	}
	if len(st.TimestampSteps) != 1 || st.TimestampSteps[160] != st.Packets-1 {
		t.Errorf("timestamp steps %v, want only 160", st.TimestampSteps)
	}
	if st.Markers != 1 {
		t.Errorf("marker bits %d, want 1", st.Markers)
	}
	if sc.PayloadType != 0 || st.PayloadTypes[0] != st.Packets || got.Codec != "PCMU" {
		t.Errorf("payload types %v (negotiated %d, record %s), want PCMU (0) only", st.PayloadTypes, sc.PayloadType, got.Codec)
	}
	if !bytes.Equal(sc.Payload, audio.Payload) {
		t.Errorf("received payload (%d bytes) differs from the rendered frames (%d bytes)", len(sc.Payload), len(audio.Payload))
	}
	if d := got.BillableMS - sc.DurationMS; d < -40 || d > 40 {
		t.Errorf("billable %d ms, simulator measured %d ms: differ by more than 40 ms", got.BillableMS, sc.DurationMS)
	}
	if got.BillableMinutes != 1 || got.AudioMS != audio.Duration().Milliseconds() {
		t.Errorf("billable minutes %d (want 1), audio %d ms (want %d)", got.BillableMinutes, got.AudioMS, audio.Duration().Milliseconds())
	}
	if got.InviteAt.IsZero() || got.RingingAt.IsZero() || got.AnsweredAt.IsZero() || got.EndedAt.IsZero() ||
		got.InviteAt.Before(got.EnqueuedAt) || got.AnsweredAt.Before(got.InviteAt) || got.EndedAt.Before(got.AnsweredAt) {
		t.Errorf("timestamps out of order: %+v", got)
	}
	cdrs, err := r.q.CDRs(context.Background(), "", 10)
	if err != nil || len(cdrs) != 1 || cdrs[0].ID != rec.ID || cdrs[0].BillableMS != got.BillableMS {
		t.Errorf("CDR stream = %+v (%v), want one CDR of %s", cdrs, err, rec.ID)
	}
	if sc.WAVPath == "" {
		t.Error("simulator wrote no WAV file")
	}
	if n := r.worker.Dialer.RTPPortsInUse(); n != 0 {
		t.Errorf("%d RTP ports still held after the call", n)
	}
}

func TestScenarios(t *testing.T) {
	r := newRig(t, func(c *config.Config) {
		c.Trunks[0].Username, c.Trunks[0].Password = "vms", "secret"
	})
	r.start(t)
	cases := []struct {
		to     string
		status queue.Status
		code   int
	}{
		{"+8613800138001", queue.StatusBusy, 486},
		{"+8613800138003", queue.StatusRejected, 603},
		{"+8613800138004", queue.StatusInvalidNumber, 404},
		{"+8613800138005", queue.StatusUnreachable, 503},
		{"+8613800138006", queue.StatusCompleted, 200}, // 183 early media, then 200
		{"+8613800138007", queue.StatusCompleted, 200}, // digest challenge
		{"+8613800138002", queue.StatusNoAnswer, 0},    // rings past the ring timeout
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		rec, err := r.q.SendTTS(context.Background(), queue.TTSRequest{To: c.to, TemplateID: "delivery",
			Params: []string{"Ann", "A1", "9 and 11"}, PlayTimes: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = rec.ID
	}
	for i, c := range cases {
		got := r.wait(t, ids[i], 60*time.Second)
		if got.Status != c.status || got.SIPCode != c.code {
			t.Errorf("%s: status %s %d (%s), want %s %d", c.to, got.Status, got.SIPCode, got.Reason, c.status, c.code)
		}
		if got.BillableMS != 0 && c.code != 200 {
			t.Errorf("%s: unanswered call billed %d ms", c.to, got.BillableMS)
		}
	}
	if n := r.sim.Cancels(); n != 1 {
		t.Errorf("simulator saw %d CANCELs, want 1 (the ring timeout)", n)
	}
}

func TestWrongPasswordIsAuthFailure(t *testing.T) {
	r := newRig(t, func(c *config.Config) { c.Trunks[0].Username, c.Trunks[0].Password = "vms", "wrong" })
	r.start(t)
	rec, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: "+8613800138007", Code: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	got := r.wait(t, rec.ID, 30*time.Second)
	if got.Status != queue.StatusFailed || got.SIPCode != 403 || !strings.Contains(got.Reason, "credentials") {
		t.Fatalf("wrong password: status %s %d (%s), want failed 403 naming the credentials", got.Status, got.SIPCode, got.Reason)
	}
}

func TestCalleeHangsUpEarly(t *testing.T) {
	r := newRig(t, nil)
	r.start(t)
	// Three repetitions last far longer than the 1 s the callee stays.
	rec, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: "+8613800138011", Code: "99887766", PlayTimes: 3})
	if err != nil {
		t.Fatal(err)
	}
	got := r.wait(t, rec.ID, 30*time.Second)
	calls, _ := r.sim.WaitEnded(context.Background(), 1)
	if got.Status != queue.StatusCompleted || got.HungUpBy != "callee" || got.PlayedToEnd {
		t.Fatalf("record = %s hung up by %q played_to_end=%v, want completed by callee, not played to end", got.Status, got.HungUpBy, got.PlayedToEnd)
	}
	if got.BillableMS < 900 || got.BillableMS > 1300 || got.BillableMS >= got.AudioMS {
		t.Errorf("billable %d ms for a callee who left after 1 s (audio %d ms)", got.BillableMS, got.AudioMS)
	}
	if d := got.BillableMS - calls[0].DurationMS; d < -40 || d > 40 {
		t.Errorf("billable %d ms, simulator measured %d ms", got.BillableMS, calls[0].DurationMS)
	}
}

func TestSameIDTwiceMakesOneCall(t *testing.T) {
	r := newRig(t, nil)
	r.start(t)
	req := queue.CodeRequest{ID: "order-42-login", To: "+8613800138000", Code: "5555", PlayTimes: 1}
	if _, err := r.q.SendCode(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	_, err := r.q.SendCode(context.Background(), req)
	if !errors.Is(err, queue.ErrDuplicate) {
		t.Fatalf("second send: %v, want ErrDuplicate", err)
	}
	r.wait(t, req.ID, 30*time.Second)
	if _, err := r.q.SendCode(context.Background(), req); !errors.Is(err, queue.ErrDuplicate) {
		t.Fatalf("send after completion: %v, want ErrDuplicate", err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := r.sim.Invites(); n != 1 {
		t.Fatalf("simulator received %d INVITEs, want 1", n)
	}
}

func TestRedeliveryAfterDialingDoesNotDial(t *testing.T) {
	r := newRig(t, nil)
	rec, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: "+8613800138000", Code: "2468"})
	if err != nil {
		t.Fatal(err)
	}
	// A first delivery claimed the message and then its worker died
	// before it recorded its INVITE.
	if out, _, err := r.q.Claim(context.Background(), rec.ID, 1, "dead-worker", "slot", queue.Durability{}); err != nil || out != queue.Claimed {
		t.Fatalf("claim: %v %v", out, err)
	}
	// asynq redelivers the task to a live worker, which does not dial; its
	// reaper finds the dead worker's call and ends it unknown.
	r.start(t)
	got := r.wait(t, rec.ID, 30*time.Second)
	if got.Status != queue.StatusUnknown {
		t.Fatalf("status %s, want unknown", got.Status)
	}
	// The handler called directly, as a second redelivery, does nothing either.
	task := asynq.NewTask(queue.TaskSend, []byte(`{"id":"`+rec.ID+`"}`))
	if err := r.worker.Handler.ProcessTask(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := r.sim.Invites(); n != 0 {
		t.Fatalf("simulator received %d INVITEs, want none", n)
	}
}
