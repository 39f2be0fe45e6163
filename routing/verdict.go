package routing

import (
	"slices"

	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony"
)

// This file is the routing side of the one classification table: for every
// way a call ends (telephony/outcome.go gives its status and SIP code) it
// says whether another trunk may be tried and whether a redial may be
// scheduled. Failover is only for carrier-side failures before any 18x;
// once the callee's side answered (18x, 486, 603, 404, 200) the outcome is
// the callee's and no other trunk is tried.

// Verdict is what may follow a call's outcome.
type Verdict struct {
	// TryNextTrunk: the trunk failed before reaching the callee; the next
	// candidate trunk may place the same attempt.
	TryNextTrunk bool
	// TrunkFailure counts towards marking the trunk down (same set).
	TrunkFailure bool
	// Redial: a later attempt may be scheduled, if the kind's policy names
	// this status.
	Redial bool
}

// rule is one row of the table: a status and the SIP codes it applies to
// (nil: any code, including 0 for no final response).
type rule struct {
	status  queue.Status
	codes   []int
	verdict Verdict
	why     string
}

var (
	failover = Verdict{TryNextTrunk: true, TrunkFailure: true, Redial: true}
	redial   = Verdict{Redial: true}
	final    = Verdict{}
)

// table is read top to bottom; the first matching row wins. Rows that allow
// failover apply only when no 18x and no answer were received (Classify).
var table = []rule{
	{queue.StatusCompleted, nil, final, "answered: delivered"},
	{queue.StatusBusy, nil, redial, "486/600 busy: the callee's line; redial later if the policy says so"},
	{queue.StatusNoAnswer, []int{408}, failover, "408 from the trunk's proxy before any 18x: carrier-side timeout"},
	{queue.StatusNoAnswer, nil, redial, "ring timeout, 480, 487: nobody picked up"},
	{queue.StatusInvalidNumber, nil, final, "404/484/410/604: the number does not exist; never redialled"},
	{queue.StatusRejected, []int{403}, failover, "403 before any 18x: the trunk refuses us (account, IP, route)"},
	{queue.StatusRejected, nil, final, "603 and other refusals: the callee declined; never redialled"},
	{queue.StatusFailed, []int{401, 403, 407}, failover, "authentication failed at this trunk: another trunk may take the call"},
	{queue.StatusFailed, []int{488, 606}, failover, "488/606: this trunk accepts none of our codecs"},
	{queue.StatusFailed, nil, final, "our side: audio, config, no common codec after answer, worker stopped"},
	{queue.StatusUnreachable, nil, failover, "5xx, no response, transport error: carrier-side"},
	{queue.StatusUnknown, nil, final, "outcome lost: never dialled again"},
}

// Classify returns the verdict for a call's result.
func Classify(res telephony.Result) Verdict {
	for _, r := range table {
		if r.status != res.Status || (r.codes != nil && !slices.Contains(r.codes, res.SIPCode)) {
			continue
		}
		v := r.verdict
		if !res.RingingAt.IsZero() || !res.AnsweredAt.IsZero() {
			// The callee's side was reached: the outcome is theirs.
			v.TryNextTrunk, v.TrunkFailure = false, false
		}
		return v
	}
	return final
}

// Redialable reports whether a status may ever be redialled.
func Redialable(s queue.Status) bool {
	for _, r := range table {
		if r.status == s && r.verdict.Redial {
			return true
		}
	}
	return false
}
