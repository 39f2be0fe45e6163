package telephony

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/tts"
)

// CallRequest is one outbound call.
type CallRequest struct {
	MessageID string
	To        string // E.164
	Trunk     Trunk
	// Audio is the message, rendered for each codec the trunk may answer with.
	Audio       map[tts.Codec]*tts.Audio
	RingTimeout time.Duration
	MaxDuration time.Duration
	// MediaTimeout ends an answered call when no RTP has come from the
	// callee for this long (0: off; many carriers send none on a one-way call).
	MediaTimeout time.Duration
	// Actions maps a DTMF key to what it does: KeyRepeat, KeyConfirm or KeyOptOut.
	Actions map[string]string
	// Ack is played after the confirm key, then the call ends.
	Ack map[tts.Codec]*tts.Audio
	// Progress, when set, is told about the call's milestones as they happen.
	Progress Progress
}

// Key actions a template can declare.
const (
	KeyRepeat  = "repeat"  // play the message again from the start
	KeyConfirm = "confirm" // record the confirmation, play the acknowledgement, hang up
	KeyOptOut  = "optout"  // record the opt-out and hang up
)

// Progress receives a call's milestones. Its methods are called from the
// call's goroutine and should return quickly.
//
// The Dialog given lets another Dialer end the call if this process dies
// (EndDialog): store the latest one. InviteSent's has no remote tag
// (EndDialog would CANCEL); Answered's is complete (EndDialog sends BYE).
type Progress interface {
	// InviteSent is called when the INVITE has left, and again with the
	// same time when a digest challenge made us send it anew (new branch
	// and CSeq: only the newest Dialog cancels it). sipgo has no hook at
	// that resend, so the new Dialog comes with the first response to it
	// (100 Trying, usually within a round trip).
	InviteSent(at time.Time, d Dialog)
	Ringing(at time.Time)
	// Answered is called once the 2xx has been ACKed.
	Answered(at time.Time, d Dialog)
}

// Result is how a call ended.
type Result struct {
	Status    queue.Status
	Reason    string
	SIPCode   int
	SIPReason string
	// HungUpBy is "caller" (vms sent BYE), "callee" (the carrier sent BYE) or "".
	HungUpBy    string
	PlayedToEnd bool
	CallID      string
	Codec       tts.Codec
	InviteAt    time.Time
	RingingAt   time.Time // first 18x
	AnsweredAt  time.Time // 200 OK received
	EndedAt     time.Time // our BYE's 200 received, or their BYE received
	// BillableMS runs from the 200 OK to the end of the call.
	BillableMS      int64
	AudioMS         int64
	PacketsSent     int
	PacketsReceived int
	// Keys are the DTMF keys received, in order (RFC 4733 and SIP INFO).
	Keys []queue.KeyPress
	// KeysDropped counts key presses beyond the 64 a call records.
	KeysDropped int
	Confirmed   bool
	OptedOut    bool
}

// call is the state of one call that the Dialer's request handlers share.
type call struct {
	byeOnce sync.Once
	byeAt   time.Time
	bye     chan struct{} // closed when the carrier's BYE arrived
	sdp     []byte        // our current SDP, for re-INVITE and UPDATE
	keys    *keyBox
	dialog  dialogTags // set at the answer; in-dialog requests must match it
}

func (c *call) remoteBye(at time.Time) {
	c.byeOnce.Do(func() {
		c.byeAt = at
		close(c.bye)
	})
}

// Call places one call and plays the message: INVITE with an SDP offer,
// digest authentication, ring timeout with CANCEL, ACK, RTP until the audio
// ends or the callee hangs up, BYE. It returns when the call is over and
// every socket it took is released; the Result says how it ended.
func (d *Dialer) Call(ctx context.Context, req CallRequest) Result {
	var res Result
	err := d.call(ctx, req, &res)
	if res.Status == "" {
		classify(&res, err, req.Trunk.Name)
	}
	if !res.AnsweredAt.IsZero() && !res.EndedAt.IsZero() {
		res.BillableMS = res.EndedAt.Sub(res.AnsweredAt).Milliseconds()
	}
	if res.EndedAt.IsZero() {
		res.EndedAt = time.Now()
	}
	return res
}

func (d *Dialer) call(ctx context.Context, req CallRequest, res *Result) error {
	log := d.log.With("message_id", req.MessageID, "to", queue.MaskNumber(req.To), "trunk", req.Trunk.Name)
	offer := offerFormats(req)
	if len(offer) == 0 {
		return errNoAudio
	}
	rtpConn, err := d.ports.acquire()
	if err != nil {
		return err
	}
	defer d.ports.release(rtpConn)

	rtpPort := uint16(rtpConn.LocalAddr().(*net.UDPAddr).Port)
	body := BuildSDP(sessionID(), d.sdpIP, rtpPort, append(offer, FormatTelephoneEvent))

	callID := uuid.NewString()
	res.CallID = callID
	log = log.With("call_id", callID)
	c := &call{bye: make(chan struct{}), sdp: body, keys: newKeyBox()}
	d.track(callID, c)
	defer d.untrack(callID)

	invite := d.newInvite(req, callID, body)
	ringCtx, cancelRing := context.WithTimeoutCause(ctx, req.RingTimeout, ErrRingTimeout)
	defer cancelRing()
	dlg, err := d.dialogsFor(req.Trunk).WriteInvite(ringCtx, invite)
	if err != nil {
		return fmt.Errorf("send INVITE to trunk %s: %w: %w", req.Trunk.Name, sip.ErrTransactionTransport, err)
	}
	res.InviteAt = time.Now() // the INVITE has left
	defer dlg.Close()
	sentBranch := viaBranch(dlg.InviteRequest)
	if req.Progress != nil {
		req.Progress.InviteSent(res.InviteAt, dialogOf(dlg.InviteRequest, nil, req.Trunk))
	}
	log.Debug("INVITE sent")

	var answer *Media // the first SDP received is the answer (RFC 3264), even in a 183
	var answerErr error
	challenged := false // the trunk asked for digest credentials
	responded := false  // any response at all came back
	err = dlg.WaitAnswer(ringCtx, sipgo.AnswerOptions{
		Username: orDefault(req.Trunk.AuthUsername, req.Trunk.Username),
		Password: req.Trunk.Password,
		OnResponse: func(r *sip.Response) error {
			now := time.Now()
			responded = true
			if b := viaBranch(dlg.InviteRequest); b != sentBranch {
				// WaitAnswer sent the INVITE again with credentials.
				sentBranch = b
				if req.Progress != nil {
					req.Progress.InviteSent(res.InviteAt, dialogOf(dlg.InviteRequest, nil, req.Trunk))
				}
			}
			if (r.StatusCode == 180 || r.StatusCode == 183) && res.RingingAt.IsZero() {
				res.RingingAt = now
				if req.Progress != nil {
					req.Progress.Ringing(now)
				}
			}
			if r.IsSuccess() {
				res.AnsweredAt = now
			}
			if r.StatusCode == 401 || r.StatusCode == 407 {
				challenged = true
				if realm := challengeRealm(r); req.Trunk.Realm != "" && realm != req.Trunk.Realm {
					res.SIPCode, res.SIPReason = r.StatusCode, r.Reason
					return fmt.Errorf("%w: trunk %s challenged for realm %q, configured realm is %q: check trunks[].realm",
						ErrAuthFailed, req.Trunk.Name, realm, req.Trunk.Realm)
				}
			}
			if answer == nil && answerErr == nil && len(r.Body()) > 0 && (r.IsSuccess() || r.IsProvisional()) {
				m, perr := ParseSDP(r.Body())
				if perr != nil {
					answerErr = perr
				} else {
					answer = &m
				}
			}
			return nil
		},
	})
	if err != nil {
		// The callee may have answered while we were cancelling: the 200
		// is stored but sipgo sends neither ACK nor BYE. Hang up properly,
		// or the callee stays connected to silence.
		if r := dlg.InviteResponse; r != nil && r.IsSuccess() {
			log.Info("200 OK crossed our CANCEL: sending ACK and BYE")
			_ = dlg.Ack(context.Background())
			byeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = dlg.Bye(byeCtx)
			cancel()
			res.AnsweredAt = time.Time{} // not billed: nothing was played
		}
		var resp *sipgo.ErrDialogResponse
		switch {
		case challenged && errors.As(err, &resp) && resp.Res.StatusCode == 403:
			return fmt.Errorf("%w: trunk %s refused our credentials (403 after the digest challenge): check trunks[].username and password", ErrAuthFailed, req.Trunk.Name)
		case ctx.Err() != nil:
			return ErrStopped
		case !responded:
			// Not even 100 Trying: the carrier is unreachable, whether
			// Timer B or the ring timeout ended the wait.
			return fmt.Errorf("%w: %w", sip.ErrTransactionTimeout, err)
		case errors.Is(context.Cause(ringCtx), ErrRingTimeout):
			return ErrRingTimeout
		}
		return err
	}
	res.SIPCode, res.SIPReason = dlg.InviteResponse.StatusCode, dlg.InviteResponse.Reason
	c.dialog.confirm(dlg.InviteRequest, dlg.InviteResponse)
	if err := dlg.Ack(ctx); err != nil {
		return fmt.Errorf("send ACK: %w", err)
	}
	if req.Progress != nil {
		req.Progress.Answered(res.AnsweredAt, dialogOf(dlg.InviteRequest, dlg.InviteResponse, req.Trunk))
	}

	// Choose the codec from the answer; without a usable answer, hang up.
	audio, pt, dst, err := chooseMedia(req, answer, answerErr)
	if err != nil {
		d.hangup(dlg, c, res)
		res.Status, res.Reason = queue.StatusFailed, err.Error()
		return nil
	}
	res.Codec = audio.Codec
	res.AudioMS = audio.Duration().Milliseconds()
	log.Debug("answered", "codec", audio.Codec, "rtp_to", dst)

	dtmfPT := -1
	if _, ev, err := Negotiate(append(offerFormats(req), FormatTelephoneEvent), answer.Formats); err == nil && ev != nil {
		dtmfPT = int(ev.PT)
	}
	s := newStream(rtpConn, dst, audio, pt)
	allow := acceptAddr(d.acceptFrom, dst, signallingAddr(dlg.InviteResponse, req.Trunk))
	rcv := newReceiver(rtpConn, s, allow, answer.Formats, dtmfPT, c.keys)
	rcv.lastRTP.Store(res.AnsweredAt.UnixNano())
	recvDone := make(chan struct{})
	go func() { defer close(recvDone); rcv.run() }()

	d.pacer.play(s)
	stopErr := d.play(ctx, req, c, s, rcv, res, dlg.Context().Done(), log)
	s.stop.Store(true)
	<-s.finished
	res.PacketsSent = s.sent

	select {
	case <-c.bye:
		res.HungUpBy, res.EndedAt = "callee", c.byeAt
	default:
		d.hangup(dlg, c, res)
	}
	// stop ends the receiver; release (deferred) closes the socket.
	rcv.stop()
	<-recvDone
	res.PacketsReceived = rcv.packets
	res.KeysDropped = int(c.keys.dropped.Load())
	if rcv.garbage > 0 {
		log.Debug("ignored non-RTP packets from the callee", "count", rcv.garbage)
	}
	if rcv.foreign > 0 || rcv.stray > 0 || res.KeysDropped > 0 {
		log.Warn("dropped RTP not from the callee's stream, or keys beyond the limit",
			"rtp_accepted_from", allow, "from_other_hosts", rcv.foreign, "other_ssrc_or_port", rcv.stray, "keys_dropped", res.KeysDropped)
	}
	if rcv.drained > 0 || rcv.switches > 0 {
		log.Debug("RTP queued before the answer dropped; stream changes", "drained", rcv.drained, "ssrc_switches", rcv.switches)
	}
	switch {
	case stopErr != nil:
		res.Status, res.Reason = queue.StatusCompleted, "worker stopped during the call; hung up early"
	case s.sendErr != nil:
		res.Status, res.Reason = queue.StatusCompleted, fmt.Sprintf("RTP send failed after %d packets: %v", s.sent, s.sendErr)
	}
	return nil
}

// play runs an answered call until the message (and any replay or
// acknowledgement) has played, the callee hangs up, a key ends it, media
// stops arriving, or a limit passes. It returns ErrStopped when ctx ended.
func (d *Dialer) play(ctx context.Context, req CallRequest, c *call, s *stream, rcv *receiver, res *Result, dialogDone <-chan struct{}, log *slog.Logger) error {
	maxTimer := time.NewTimer(req.MaxDuration)
	defer maxTimer.Stop()
	var mediaCheck <-chan time.Time
	if req.MediaTimeout > 0 {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		mediaCheck = t.C
	}
	audio := s.audio
	for {
		select {
		case <-s.finished:
			// Only the pacer writes s.next and s.audio; finished orders it.
			res.PlayedToEnd = s.sendErr == nil && s.next >= s.audio.Frames()
			return nil
		case <-c.bye:
			return nil
		case <-dialogDone:
			return nil
		case <-maxTimer.C:
			log.Warn("call reached call.max_duration; hanging up")
			return nil
		case <-ctx.Done():
			return ErrStopped
		case k := <-c.keys.ch:
			res.Keys = append(res.Keys, k)
			switch req.Actions[k.Key] {
			case KeyRepeat:
				if !res.Confirmed {
					s.replay(audio)
				}
			case KeyConfirm:
				if !res.Confirmed {
					res.Confirmed = true
					if ack := req.Ack[audio.Codec]; ack != nil {
						s.replay(ack)
					} else {
						return nil
					}
				}
			case KeyOptOut:
				res.OptedOut = true
				return nil
			}
		case now := <-mediaCheck:
			if silent := now.Sub(time.Unix(0, rcv.lastRTP.Load())); silent > req.MediaTimeout {
				res.Status = queue.StatusMediaTimeout
				res.Reason = fmt.Sprintf("no RTP from the callee for %s after answer (call.media_timeout)", silent.Round(time.Millisecond))
				return nil
			}
		}
	}
}

// hangup sends BYE and records who ended the call and when. A BYE that
// crosses the carrier's own BYE counts as theirs.
func (d *Dialer) hangup(dlg *sipgo.DialogClientSession, c *call, res *Result) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := dlg.Bye(ctx)
	now := time.Now()
	select {
	case <-c.bye:
		res.HungUpBy, res.EndedAt = "callee", c.byeAt
		return
	default:
	}
	res.HungUpBy, res.EndedAt = "caller", now
	if err != nil {
		d.log.Warn("BYE failed", "call_id", res.CallID, "err", err)
	}
}

func (d *Dialer) newInvite(req CallRequest, callID string, body []byte) *sip.Request {
	t := req.Trunk
	recipient := sip.Uri{Scheme: "sip", User: req.To, Host: t.URI.Host, Port: t.URI.Port}
	if t.Transport == "tcp" || t.Transport == "tls" {
		recipient.UriParams = sip.NewParams()
		recipient.UriParams.Add("transport", t.Transport)
	}
	inv := sip.NewRequest(sip.INVITE, recipient)
	inv.SetTransport(transportOf(t))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: orDefault(t.CallerID, "vms"), Host: orDefault(t.FromDomain, t.URI.Host)}}
	from.Params = sip.NewParams()
	from.Params.Add("tag", sip.GenerateTagN(16))
	inv.AppendHeader(from)
	inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: req.To, Host: t.URI.Host}})
	cid := sip.CallIDHeader(callID)
	inv.AppendHeader(&cid)
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"))
	inv.SetBody(body)
	return inv
}

// offerFormats lists the trunk's codecs that we have audio for, in the
// trunk's order.
func offerFormats(req CallRequest) []Format {
	var out []Format
	for _, c := range req.Trunk.Codecs {
		if req.Audio[c] == nil {
			continue
		}
		switch c {
		case tts.PCMU:
			out = append(out, FormatPCMU)
		case tts.PCMA:
			out = append(out, FormatPCMA)
		}
	}
	return out
}

// chooseMedia picks the audio, payload type and destination from the answer.
func chooseMedia(req CallRequest, answer *Media, answerErr error) (*tts.Audio, uint8, netip.AddrPort, error) {
	if answerErr != nil {
		return nil, 0, netip.AddrPort{}, fmt.Errorf("%w: the answer's SDP is malformed: %v", ErrNoCommonCodec, answerErr)
	}
	if answer == nil {
		return nil, 0, netip.AddrPort{}, fmt.Errorf("%w: the answer carried no SDP", ErrNoCommonCodec)
	}
	if answer.Addr.Port() == 0 {
		return nil, 0, netip.AddrPort{}, fmt.Errorf("%w: the callee refused the audio stream (m=audio 0)", ErrNoCommonCodec)
	}
	f, _, err := Negotiate(offerFormats(req), answer.Formats)
	if err != nil {
		return nil, 0, netip.AddrPort{}, err // Negotiate's error wraps ErrNoCommonCodec
	}
	audio := req.Audio[tts.Codec(f.Name)]
	if audio == nil {
		return nil, 0, netip.AddrPort{}, fmt.Errorf("%w: answered %s", ErrNoCommonCodec, f.Name)
	}
	return audio, f.PT, answer.Addr, nil
}

func sessionID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) >> 1
}

// viaBranch is the branch of a request's top Via.
func viaBranch(r *sip.Request) string {
	if v := r.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		return b
	}
	return ""
}

// challengeRealm is the realm of a 401/407's digest challenge.
func challengeRealm(r *sip.Response) string {
	h := r.GetHeader("WWW-Authenticate")
	if r.StatusCode == 407 {
		h = r.GetHeader("Proxy-Authenticate")
	}
	if h == nil {
		return ""
	}
	v := h.Value()
	i := strings.Index(strings.ToLower(v), "realm=")
	if i < 0 {
		return ""
	}
	v = strings.TrimPrefix(v[i+len("realm="):], `"`)
	if j := strings.IndexAny(v, `",`); j >= 0 {
		v = v[:j]
	}
	return v
}
