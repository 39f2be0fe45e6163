package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
)

// A template's key actions, end to end: the simulator presses keys, the
// record keeps them, confirm is recorded, and opt-out suppresses the number.
func TestKeyActionsEndToEnd(t *testing.T) {
	const confirmer, leaver = "+8613800138021", "+8613800138022"
	r := newRigScenarios(t, map[string]string{
		confirmer: "answer;dtmf=1@1500ms",
		leaver:    "answer;info=9@1s",
	}, func(c *config.Config) {
		c.Templates = append(c.Templates, config.Template{ID: "appointment", Language: "en", Status: "approved",
			Text:       "Your appointment is tomorrow at {1}. Press 1 to confirm, 2 to hear this again, 9 to stop these calls.",
			KeyActions: map[string]string{"1": "confirm", "2": "repeat", "9": "optout"}})
	})
	r.start(t)
	send := func(to string) (*queue.Record, error) {
		return r.q.SendTTS(context.Background(), queue.TTSRequest{To: to, TemplateID: "appointment", Params: []string{"10 am"}, PlayTimes: 1})
	}

	rec, err := send(confirmer)
	if err != nil {
		t.Fatal(err)
	}
	got := r.wait(t, rec.ID, 40*time.Second)
	if !got.Confirmed || got.OptedOut || len(got.Keys) != 1 || got.Keys[0].Key != "1" || got.Keys[0].Via != "rfc4733" {
		t.Fatalf("confirm: confirmed=%v keys=%+v", got.Confirmed, got.Keys)
	}
	if got.HungUpBy != "caller" || got.BillableMS > 6000 {
		t.Fatalf("confirm: vms should hang up after the acknowledgement, billed %d ms, hung up by %s", got.BillableMS, got.HungUpBy)
	}

	rec, err = send(leaver)
	if err != nil {
		t.Fatal(err)
	}
	got = r.wait(t, rec.ID, 40*time.Second)
	if !got.OptedOut || len(got.Keys) != 1 || got.Keys[0].Key != "9" || got.Keys[0].Via != "info" {
		t.Fatalf("optout: opted_out=%v keys=%+v", got.OptedOut, got.Keys)
	}
	// The number is suppressed for the app: the next send is refused.
	_, err = send(leaver)
	var ie *queue.InputError
	if !errors.As(err, &ie) || ie.Code != "blocked" {
		t.Fatalf("send after opt-out: %v, want blocked", err)
	}
}
