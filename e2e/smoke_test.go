package e2e

import (
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	num := "+8613800138000"
	s := StartStack(t, Options{Scenarios: map[string]string{num: "answer;dtmf=4@500ms"}})
	rec := s.SendTTS(t, num, 1)
	rec = s.WaitTerminal(t, rec.ID, 30*time.Second)
	t.Logf("record: %+v", rec)
	time.Sleep(2 * time.Second)
	for _, c := range s.Receiver.All() {
		t.Logf("cb %s", c)
	}
	for _, c := range s.Sim.Calls() {
		t.Logf("sim %+v", c)
	}
	s.CheckCallbacks(t, rec)
}
