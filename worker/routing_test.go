package worker

import (
	"context"
	"testing"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony/sim"
)

// TestFailoverAndRedial runs one worker with two trunks: the rig's
// simulator first, a second simulator as backup. A 503 before any 18x fails
// over to the backup; a 486 does not, and is redialled by the tts policy as
// a second attempt with its own entry.
func TestFailoverAndRedial(t *testing.T) {
	const failover, busy = "+8613800138005", "+8613800138001" // 503 and 486 on the first simulator
	backup, err := sim.Start(context.Background(), sim.Config{Listen: "127.0.0.1:0",
		Scenarios: map[string]sim.Scenario{failover: {Kind: sim.KindAnswer}, busy: {Kind: sim.KindAnswer}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = backup.Close() })
	r := newRig(t, func(c *config.Config) {
		second := c.Trunks[0]
		second.Name, second.URI, second.Priority = "backup", "sip:"+backup.Addr().String(), 10
		c.Trunks = append(c.Trunks, second)
		c.Routing.Redial = map[string]config.Redial{"tts": {On: []string{"busy"}, Max: 1, Delay: config.Duration(time.Second)}}
		c.Routing.FailureThreshold = 5
	})
	r.start(t)
	ctx := context.Background()
	send := func(to string) string {
		rec, err := r.q.SendTTS(ctx, queue.TTSRequest{To: to, TemplateID: "delivery", Params: []string{"Ann", "A1", "9 and 11"}, PlayTimes: 1})
		if err != nil {
			t.Fatal(err)
		}
		return rec.ID
	}
	fo, bz := send(failover), send(busy)

	got := r.wait(t, fo, 60*time.Second)
	atts, _ := r.q.Attempts(ctx, fo)
	if got.Status != queue.StatusCompleted || got.Trunk != "backup" || len(atts) != 2 ||
		atts[0].Trunk != "carrier-sim" || atts[0].SIPCode != 503 || atts[1].Trunk != "backup" || atts[1].Status != queue.StatusCompleted {
		t.Fatalf("503 then failover: record %s on %s, attempts %+v; want completed on backup after a 503 on carrier-sim", got.Status, got.Trunk, atts)
	}

	got = r.wait(t, bz, 60*time.Second)
	atts, _ = r.q.Attempts(ctx, bz)
	if got.Status != queue.StatusBusy || got.Attempt != 2 || len(atts) != 2 ||
		atts[0].Attempt != 1 || atts[1].Attempt != 2 || atts[0].Trunk != "carrier-sim" || atts[1].Trunk != "carrier-sim" ||
		!atts[1].InviteAt.After(atts[0].EndedAt.Add(900*time.Millisecond)) {
		t.Fatalf("busy with one redial: record %s attempt %d, attempts %+v; want busy after attempts 1 and 2 on carrier-sim, 1 s apart", got.Status, got.Attempt, atts)
	}
	for _, c := range backup.Calls() {
		if c.To == busy {
			t.Errorf("a 486 failed over to the backup trunk")
		}
	}
}
