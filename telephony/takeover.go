package telephony

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Dialog is what another user agent needs to end a call this Dialer placed,
// when the process that placed it is gone: an in-dialog BYE once answered,
// a CANCEL while it rings. It is reported by Progress (InviteSent, Answered)
// and given to EndDialog of any Dialer, in this or another process. It holds
// no credentials and no phone number beyond the URIs the carrier already
// has; it is meant to be stored as JSON.
type Dialog struct {
	// CallID, LocalTag and RemoteTag identify the dialog (RFC 3261 §12):
	// the carrier matches a BYE on all three and answers 481 otherwise.
	CallID   string `json:"call_id"`
	LocalTag string `json:"local_tag"`
	// RemoteTag is the To tag of the 2xx; empty until answered. Empty means
	// EndDialog sends CANCEL, set means BYE.
	RemoteTag string `json:"remote_tag,omitempty"`
	// LocalURI and RemoteURI are the From and To URIs of the INVITE without
	// tags: a BYE and a CANCEL carry them unchanged (§12.2.1.1, §9.1).
	LocalURI  string `json:"local_uri"`
	RemoteURI string `json:"remote_uri"`
	// RequestURI is the INVITE's Request-URI: a CANCEL must repeat it (§9.1).
	RequestURI string `json:"request_uri"`
	// RemoteTarget is the Contact of the 2xx: the BYE's Request-URI.
	RemoteTarget string `json:"remote_target,omitempty"`
	// RouteSet is the 2xx's Record-Route in reverse order (the UAC's route
	// set, §12.1.2): the BYE's Route headers. Usually empty.
	RouteSet []string `json:"route_set,omitempty"`
	// CSeq is the sequence number of the INVITE (of the last one sent, when
	// a digest challenge made us send it again). A CANCEL carries it; a BYE
	// must carry a higher one (see EndDialog).
	CSeq uint32 `json:"cseq"`
	// Via is the INVITE's top Via header value. A CANCEL must carry it
	// (§9.1): the carrier finds the INVITE transaction to cancel by its
	// branch and sent-by (§17.2.3), not by where the CANCEL comes from.
	Via string `json:"via"`
	// Transport is udp, tcp or tls: a CANCEL must use the INVITE's.
	Transport string `json:"transport"`
	// Destination is the host:port the INVITE was sent to; a CANCEL goes
	// to the same place (§9.1). A host name is resolved again.
	Destination string `json:"destination"`
	// Trunk is the trunk's name, for logs.
	Trunk string `json:"trunk"`
}

// Answered reports whether the dialog is confirmed (EndDialog sends BYE).
func (dl Dialog) Answered() bool { return dl.RemoteTag != "" }

// Outcomes of EndDialog other than a clean end.
var (
	// ErrDialogGone: the carrier answered 481 (no such call or
	// transaction): the call had already ended, e.g. the callee hung up or
	// the dead worker's BYE got through. The returned time is when the 481
	// arrived, not when the call ended.
	ErrDialogGone = errors.New("the carrier no longer knows the call (481): it had already ended")
	// ErrEndUnconfirmed: the BYE or CANCEL was sent but no final response
	// reached this Dialer before ctx ended or the transaction timed out
	// (for CANCEL: after a short wait). The returned time is when it was
	// sent. Whether the call ended is unknown.
	ErrEndUnconfirmed = errors.New("no response to the hang-up")
	// ErrEndRefused: the carrier answered the BYE or CANCEL with another
	// final response (the error text has the code): the call may still be up.
	ErrEndRefused = errors.New("the carrier refused the hang-up")
	// ErrEndUnsupported: the dialog cannot be ended from this Dialer
	// (unknown transport, tls without a TLS configuration, a malformed
	// Dialog). Nothing was sent.
	ErrEndUnsupported = errors.New("cannot end this dialog from here")
)

// byeCSeqStep is how far the BYE's CSeq is above the INVITE's. RFC 3261
// §12.2.1.1 wants it higher than any request the dead user agent sent in
// the dialog, and a UAS may refuse one that is lower (500, §12.2.2). vms
// itself sends at most one in-dialog request that counts (its own BYE, at
// INVITE+1; ACK keeps the INVITE's number and CANCEL is not in-dialog), so
// +1 would do today; 100 leaves room for future in-dialog requests (INFO,
// session refresh) without any bookkeeping. The INVITE's CSeq is below
// 2^15+2 (sipgo picks it at random below 2^15), far from the 2^31 limit.
const byeCSeqStep = 100

// EndDialog ends, from this Dialer, a call placed by another user agent
// (typically a worker that died): an in-dialog BYE when d is answered, else
// a CANCEL of its INVITE. It returns when the carrier's final response has
// arrived or ctx is done; the time is when the call ended: when the BYE was
// answered (the end of billing), or when the request was sent if no answer
// came. The error is nil when the carrier confirmed the end (2xx to the
// BYE, 200 to the CANCEL), else wraps ErrDialogGone, ErrEndUnconfirmed,
// ErrEndRefused or ErrEndUnsupported.
//
// The BYE has this Dialer's own Via, so its response comes here. The CANCEL
// must carry the INVITE's Via (same branch and sent-by) to match the
// INVITE's transaction; rport is added to it (RFC 3581) so that carriers
// send the response to the CANCEL's source, this Dialer, and not to the
// dead one's address. A carrier that still answers there leaves the CANCEL
// unconfirmed: EndDialog waits only 4·T1 (2 s) for the response.
//
// A 200 to a CANCEL means the carrier took it: the INVITE ends with 487
// unless the callee answered at that moment. Such a 200 OK goes to the
// dead worker and is never ACKed; the carrier ends that call itself after
// 64·T1 (RFC 3261 §13.3.1.4).
func (d *Dialer) EndDialog(ctx context.Context, dl Dialog) (time.Time, error) {
	client, transport, err := d.clientForDialog(dl)
	if err != nil {
		return time.Time{}, err
	}
	var req *sip.Request
	if dl.Answered() {
		req, err = byeFor(dl)
	} else {
		req, err = cancelFor(dl)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: call %s: %w", ErrEndUnsupported, dl.CallID, err)
	}
	req.SetTransport(transport)

	waitCtx := ctx
	if !dl.Answered() {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, 4*sip.T1)
		defer cancel()
	}
	// Without options sipgo adds only what is missing: our Via for the BYE
	// (the CANCEL has one) and, on UDP, the listening socket as source.
	tx, err := client.TransactionRequest(waitCtx, req)
	sentAt := time.Now()
	if err != nil {
		return sentAt, fmt.Errorf("%w: %s for call %s to trunk %s: %w", ErrEndUnconfirmed, req.Method, dl.CallID, dl.Trunk, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			at := time.Now()
			switch {
			case res.IsSuccess():
				return at, nil
			case res.StatusCode == sip.StatusCallTransactionDoesNotExists:
				return at, fmt.Errorf("%w: %s for call %s", ErrDialogGone, req.Method, dl.CallID)
			default:
				return at, fmt.Errorf("%w: %s for call %s answered %d %s", ErrEndRefused, req.Method, dl.CallID, res.StatusCode, res.Reason)
			}
		case <-tx.Done():
			return sentAt, fmt.Errorf("%w: %s for call %s: %w", ErrEndUnconfirmed, req.Method, dl.CallID, tx.Err())
		case <-waitCtx.Done():
			if ctx.Err() == nil {
				// Only the CANCEL's own short wait ended.
				return sentAt, fmt.Errorf("%w: CANCEL for call %s: none within %s (it may have gone to the dead worker's address or connection)", ErrEndUnconfirmed, dl.CallID, 4*sip.T1)
			}
			return sentAt, fmt.Errorf("%w: %s for call %s: %w", ErrEndUnconfirmed, req.Method, dl.CallID, context.Cause(ctx))
		}
	}
}

// clientForDialog picks the client that sends on the dialog's transport.
func (d *Dialer) clientForDialog(dl Dialog) (*sipgo.Client, string, error) {
	switch strings.ToLower(dl.Transport) {
	case "", "udp":
		return d.client, "UDP", nil
	case "tcp":
		return d.streamClient, "TCP", nil
	case "tls":
		if !d.tls {
			return nil, "", fmt.Errorf("%w: call %s is on tls and this dialer has no TLS configuration (trunks with transport tls)", ErrEndUnsupported, dl.CallID)
		}
		return d.streamClient, "TLS", nil
	}
	return nil, "", fmt.Errorf("%w: call %s: transport %q is not supported (udp, tcp, tls)", ErrEndUnsupported, dl.CallID, dl.Transport)
}

// byeFor builds the in-dialog BYE of RFC 3261 §12.2.1.1 and §15.1.1.
func byeFor(dl Dialog) (*sip.Request, error) {
	var target sip.Uri
	if err := sip.ParseUri(dl.RemoteTarget, &target); err != nil {
		return nil, fmt.Errorf("remote target %q: %w", dl.RemoteTarget, err)
	}
	var routes []*sip.RouteHeader
	for _, v := range dl.RouteSet {
		hs, err := parseHeaders("Route", v)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			r, ok := h.(*sip.RouteHeader)
			if !ok {
				return nil, fmt.Errorf("route %q: not a route", v)
			}
			routes = append(routes, r)
		}
	}
	recipient := target
	if len(routes) > 0 && !routes[0].Address.UriParams.Has("lr") {
		// A strict router: it becomes the Request-URI and the remote
		// target the last Route (§12.2.1.1).
		recipient = routes[0].Address
		routes = append(routes[1:], &sip.RouteHeader{Address: target})
	}
	req := sip.NewRequest(sip.BYE, recipient)
	for _, r := range routes {
		req.AppendHeader(r)
	}
	if err := addDialogHeaders(req, dl, dl.RemoteTag, dl.CSeq+byeCSeqStep); err != nil {
		return nil, err
	}
	req.AppendHeader(sip.NewHeader("Reason", `Q.850;cause=16;text="Normal call clearing"`))
	return req, nil
}

// cancelFor builds the CANCEL of RFC 3261 §9.1: the INVITE's Request-URI,
// Call-ID, From, To (no tag), CSeq number and its one Via.
func cancelFor(dl Dialog) (*sip.Request, error) {
	var ruri sip.Uri
	if err := sip.ParseUri(dl.RequestURI, &ruri); err != nil {
		return nil, fmt.Errorf("request URI %q: %w", dl.RequestURI, err)
	}
	hs, err := parseHeaders("Via", dl.Via)
	if err != nil {
		return nil, err
	}
	via, ok := hs[0].(*sip.ViaHeader)
	if !ok || len(hs) != 1 {
		return nil, fmt.Errorf("via %q: want one Via value", dl.Via)
	}
	if branch, _ := via.Params.Get("branch"); !strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie) {
		return nil, fmt.Errorf("via %q: no RFC 3261 branch", dl.Via)
	}
	if !via.Params.Has("rport") {
		via.Params.Add("rport", "") // the response comes to us (RFC 3581)
	}
	req := sip.NewRequest(sip.CANCEL, ruri)
	req.AppendHeader(via)
	if err := addDialogHeaders(req, dl, "", dl.CSeq); err != nil {
		return nil, err
	}
	if dl.Destination != "" {
		req.SetDestination(dl.Destination)
	}
	return req, nil
}

// addDialogHeaders adds From (our tag), To (with toTag when not empty),
// Call-ID, CSeq and Max-Forwards.
func addDialogHeaders(req *sip.Request, dl Dialog, toTag string, cseq uint32) error {
	if dl.CallID == "" || dl.LocalTag == "" {
		return errors.New("dialog without Call-ID or local tag")
	}
	from := &sip.FromHeader{Params: sip.NewParams()}
	if err := sip.ParseUri(dl.LocalURI, &from.Address); err != nil {
		return fmt.Errorf("local URI %q: %w", dl.LocalURI, err)
	}
	from.Params.Add("tag", dl.LocalTag)
	to := &sip.ToHeader{Params: sip.NewParams()}
	if err := sip.ParseUri(dl.RemoteURI, &to.Address); err != nil {
		return fmt.Errorf("remote URI %q: %w", dl.RemoteURI, err)
	}
	if toTag != "" {
		to.Params.Add("tag", toTag)
	}
	cid := sip.CallIDHeader(dl.CallID)
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: req.Method})
	req.AppendHeader(&maxFwd)
	req.SetBody(nil)
	return nil
}

// parseHeaders parses one header line with sipgo's parsers, so that the
// request carries typed headers (sipgo reads Via, Route... by type).
func parseHeaders(name, value string) ([]sip.Header, error) {
	hs, err := sip.HeadersParser(sip.DefaultHeadersParser()).ParseHeader(nil, []byte(name+": "+value))
	if err != nil || len(hs) == 0 {
		return nil, fmt.Errorf("%s %q: %v", name, value, err)
	}
	return hs, nil
}

// dialogOf describes the dialog of an INVITE and, once answered, of its 2xx.
func dialogOf(inv *sip.Request, res *sip.Response, t Trunk) Dialog {
	dl := Dialog{
		RequestURI:  inv.Recipient.String(),
		Transport:   strings.ToLower(transportOf(t)),
		Destination: inv.Destination(),
		Trunk:       t.Name,
	}
	if h := inv.CallID(); h != nil {
		dl.CallID = h.Value()
	}
	if h := inv.From(); h != nil {
		dl.LocalURI = h.Address.String()
		dl.LocalTag, _ = h.Params.Get("tag")
	}
	if h := inv.To(); h != nil {
		dl.RemoteURI = h.Address.String()
	}
	if h := inv.CSeq(); h != nil {
		dl.CSeq = h.SeqNo
	}
	if h := inv.Via(); h != nil {
		dl.Via = h.Value()
	}
	if res == nil || !res.IsSuccess() {
		return dl
	}
	if h := res.To(); h != nil {
		dl.RemoteTag, _ = h.Params.Get("tag")
	}
	if h := res.Contact(); h != nil {
		dl.RemoteTarget = h.Address.String()
	} else {
		dl.RemoteTarget = dl.RequestURI // no Contact: RFC 3261 requires one; fall back
	}
	rr := res.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		dl.RouteSet = append(dl.RouteSet, rr[i].Value())
	}
	return dl
}
