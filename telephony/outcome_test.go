package telephony

import (
	"testing"
	"time"

	"github.com/vms-project/vms/queue"
)

func TestVerdictTable(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name string
		res  Result
		want Verdict
	}{
		{"503 before 18x", Result{Status: queue.StatusUnreachable, SIPCode: 503}, Verdict{true, true, true}},
		{"no response", Result{Status: queue.StatusUnreachable}, Verdict{true, true, true}},
		{"503 after 180", Result{Status: queue.StatusUnreachable, SIPCode: 503, RingingAt: now}, Verdict{Redial: true}},
		{"408 from the proxy", Result{Status: queue.StatusNoAnswer, SIPCode: 408}, Verdict{true, true, true}},
		{"408 after 180", Result{Status: queue.StatusNoAnswer, SIPCode: 408, RingingAt: now}, Verdict{Redial: true}},
		{"ring timeout", Result{Status: queue.StatusNoAnswer, RingingAt: now}, Verdict{Redial: true}},
		{"auth failed", Result{Status: queue.StatusFailed, SIPCode: 403}, Verdict{true, true, true}},
		{"401 after retries", Result{Status: queue.StatusFailed, SIPCode: 401}, Verdict{true, true, true}},
		{"403 refusal", Result{Status: queue.StatusRejected, SIPCode: 403}, Verdict{true, true, true}},
		{"486 busy", Result{Status: queue.StatusBusy, SIPCode: 486}, Verdict{Redial: true}},
		{"603 decline", Result{Status: queue.StatusRejected, SIPCode: 603}, Verdict{}},
		{"404", Result{Status: queue.StatusInvalidNumber, SIPCode: 404}, Verdict{}},
		{"answered", Result{Status: queue.StatusCompleted, SIPCode: 200, AnsweredAt: now}, Verdict{}},
		{"our audio failed", Result{Status: queue.StatusFailed}, Verdict{}},
		{"488", Result{Status: queue.StatusFailed, SIPCode: 488}, Verdict{true, true, true}},
		{"media timeout", Result{Status: queue.StatusMediaTimeout, AnsweredAt: now}, Verdict{}},
	}
	for _, c := range cases {
		if got := VerdictFor(c.res); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
