package telephony

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/vms-project/vms/queue"
)

// This file is the one classification table of vms: every way a call can
// end becomes a message status and reason (classify), and each status and
// SIP code says whether another trunk may be tried and whether a redial may
// be scheduled (VerdictFor). Reporting, failover and redials all read it
// here, so they can never disagree.

// Errors a call can end with before or instead of a SIP final response.
var (
	// ErrRingTimeout: the callee did not answer within the ring timeout; CANCEL was sent.
	ErrRingTimeout = errors.New("ring timeout")
	// ErrNoCommonCodec: the answer's SDP refused audio or offered nothing we can send.
	ErrNoCommonCodec = errors.New("no common codec")
	// ErrAuthFailed: the trunk refused our digest credentials.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrStopped: the worker was stopped while the call was up.
	ErrStopped = errors.New("worker stopped during the call")
)

// statusForCode maps a SIP final response code of an unanswered INVITE.
func statusForCode(code int) queue.Status {
	switch {
	case code == 486 || code == 600:
		return queue.StatusBusy
	case code == 480 || code == 408 || code == 487:
		return queue.StatusNoAnswer
	case code == 404 || code == 484 || code == 410 || code == 604:
		return queue.StatusInvalidNumber
	case code == 401 || code == 407 || code == 488 || code == 606:
		// Our side: credentials or media that the trunk will not take.
		return queue.StatusFailed
	case code >= 500 && code < 600:
		return queue.StatusUnreachable
	case code >= 400:
		// 403, 603 and the other refusals: never dial a person who declined again.
		return queue.StatusRejected
	}
	return queue.StatusFailed
}

// classify fills r.Status and r.Reason from how the INVITE ended.
func classify(r *Result, err error, trunk string) {
	var resp *sipgo.ErrDialogResponse
	switch {
	case err == nil:
		r.Status = queue.StatusCompleted
	case errors.As(err, &resp):
		r.SIPCode, r.SIPReason = resp.Res.StatusCode, resp.Res.Reason
		r.Status = statusForCode(r.SIPCode)
		r.Reason = fmt.Sprintf("trunk %s answered %d %s", trunk, r.SIPCode, r.SIPReason)
		if r.SIPCode == 401 || r.SIPCode == 407 {
			r.Reason += fmt.Sprintf(" after digest authentication: check the username and password of trunk %s", trunk)
		}
	case errors.Is(err, ErrAuthFailed):
		if r.SIPCode == 0 {
			r.SIPCode, r.SIPReason = 403, "Forbidden"
		}
		r.Status, r.Reason = queue.StatusFailed, err.Error()
	case errors.Is(err, ErrRingTimeout):
		r.Status, r.Reason = queue.StatusNoAnswer, "no answer within the ring timeout; CANCEL sent"
	case errors.Is(err, ErrNoCommonCodec):
		r.Status, r.Reason = queue.StatusFailed, err.Error()
	case errors.Is(err, sip.ErrTransactionTimeout):
		r.Status, r.Reason = queue.StatusUnreachable, fmt.Sprintf("trunk %s sent no response to the INVITE", trunk)
	case errors.Is(err, sip.ErrTransactionTransport):
		r.Status, r.Reason = queue.StatusUnreachable, fmt.Sprintf("trunk %s: transport error: %v", trunk, err)
	case errors.Is(err, ErrStopped), errors.Is(err, context.Canceled):
		r.Status, r.Reason = queue.StatusFailed, ErrStopped.Error()
	default:
		r.Status, r.Reason = queue.StatusFailed, err.Error()
	}
}

// The second half of the table: for every way a call ends (its status and
// SIP code, from classify above) whether another trunk may be tried and
// whether a redial may be scheduled. Failover is only for carrier-side failures before any 18x;
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
	{queue.StatusMediaTimeout, nil, final, "answered, then no RTP from the callee: reached them"},
	{queue.StatusUnknown, nil, final, "outcome lost: never dialled again"},
	{queue.StatusCanceled, nil, final, "canceled before dialling"},
	{queue.StatusBlocked, nil, final, "refused by policy"},
}

// VerdictFor returns what may follow a call's result.
func VerdictFor(res Result) Verdict {
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
