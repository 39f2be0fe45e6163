package telephony

import (
	"context"
	"errors"
	"fmt"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/vms-project/vms/queue"
)

// This file is the one table that turns every way a call can end into a
// message status. Reporting (and, later, retries and metrics) read the
// status from here, so they can never disagree.

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
		r.SIPCode, r.SIPReason = 403, "Forbidden"
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
