package sim

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/vms-project/vms/telephony"
)

// Who hung up, as CallRecord.HungUpBy spells it.
const (
	hungUpByCaller = "caller"
	hungUpByCallee = "callee"
)

const (
	// byeTimeout bounds the simulator's own BYE transaction.
	byeTimeout = 3 * time.Second
	// closeByeTimeout bounds the BYE sent to calls in progress on Close.
	closeByeTimeout = time.Second
	// authRetryWait is how long a challenged call waits for the
	// authenticated INVITE before it is recorded as ended with 401. A later
	// retry still authenticates, as a new CallRecord.
	authRetryWait = 2 * time.Second
	// maxRing is the carrier's no-answer timer of the "ring" scenario: a
	// caller that neither cancels nor gives up gets 480 after it.
	maxRing = 3 * time.Minute
	// answerRing is how long answered calls ring before the 200 OK.
	answerRing = 50 * time.Millisecond
)

// call is the simulator's state of one call. mu guards every field.
type call struct {
	mu         sync.Mutex
	rec        CallRecord
	rtp        *rtpRecorder
	sdp        []byte        // the simulator's SDP answer, for re-INVITEs
	challenged chan struct{} // set while a 401 waits for its retry
	byeAt      time.Time     // first BYE, received or sent
	ended      bool
}

// snapshot copies the record with its current RTP statistics.
func (c *call) snapshot() CallRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rec
	if c.rtp != nil {
		r.RTP = c.rtp.stats.clone()
		r.Payload = append([]byte(nil), c.rtp.payload...)
		r.DTMF = string(c.rtp.digits)
	} else {
		r.RTP = r.RTP.clone()
	}
	return r
}

// resumeChallenged hands a challenged call to its authenticated retry.
func (c *call) resumeChallenged() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.challenged == nil || c.ended {
		return false
	}
	close(c.challenged)
	c.challenged = nil
	return true
}

// byeFrom records the first BYE of the call and who sent it.
func (c *call) byeFrom(who string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byeAt.IsZero() && !c.rec.AnsweredAt.IsZero() && !c.ended {
		c.byeAt = at
		c.rec.HungUpBy = who
	}
}

func (c *call) set(f func(r *CallRecord)) {
	c.mu.Lock()
	f(&c.rec)
	c.mu.Unlock()
}

func (c *call) record(p *rtp.Packet, at time.Time) {
	c.mu.Lock()
	c.rtp.add(p, at)
	c.mu.Unlock()
}

// callRun is one INVITE transaction being handled.
type callRun struct {
	s        *Simulator
	c        *call
	sc       Scenario
	req      *sip.Request
	tx       sip.ServerTransaction
	dlg      *sipgo.DialogServerSession
	log      *slog.Logger
	host     netip.Addr // advertised in Contact and SDP
	canceled chan struct{}
}

// handleInvite runs one INVITE transaction to its end. It blocks for the
// whole call; sipgo runs each request on its own goroutine and Close waits
// for these handlers.
func (s *Simulator) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
	now := time.Now()
	s.invites.Add(1)
	if !s.enter() {
		s.reply(req, tx, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	defer s.handlers.Done()

	if req.CallID() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil {
		s.reply(req, tx, sip.StatusBadRequest, "Bad Request")
		return
	}
	if _, inDialog := req.To().Params.Get("tag"); inDialog {
		s.handleReInvite(req, tx)
		return
	}

	if s.cfg.RequireTLS && !strings.EqualFold(req.Transport(), "TLS") {
		s.reply(req, tx, sip.StatusForbidden, "TLS Required")
		return
	}
	sc := scenarioFor(req.Recipient.User, s.cfg.Scenarios)
	if sc.Kind == KindBlackhole {
		// A carrier that never answers at all: not even 100 Trying.
		c := s.callFor(req, sc, now)
		(&callRun{s: s, c: c, log: s.log}).end(0)
		return
	}
	if sc.FailFirst > 0 && s.failNext(req.Recipient.User, sc.FailFirst) {
		s.reply(req, tx, sc.FailCode, failReason(sc.FailCode))
		c := s.callFor(req, sc, now)
		c.set(func(rec *CallRecord) { rec.FinalCode = sc.FailCode })
		(&callRun{s: s, c: c, log: s.log}).end(sc.FailCode)
		return
	}
	c := s.callFor(req, sc, now)
	r := &callRun{
		s:        s,
		c:        c,
		sc:       sc,
		req:      req,
		tx:       tx,
		host:     s.advertised(req),
		canceled: make(chan struct{}),
		log:      s.log.With("call_id", c.rec.CallID, "to", c.rec.To, "scenario", sc.String()),
	}
	r.run()
}

// reply answers a request statelessly within its transaction.
func (s *Simulator) reply(req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	if err := tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil)); err != nil {
		s.log.Debug("respond", "code", code, "call_id", callIDOf(req), "error", err)
	}
}

// handleReInvite answers an in-dialog INVITE with the current SDP.
func (s *Simulator) handleReInvite(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(callIDOf(req))
	var body []byte
	if c != nil {
		c.mu.Lock()
		if !c.ended {
			body = c.sdp
		}
		c.mu.Unlock()
	}
	if body == nil {
		s.reply(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	res := sip.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(s.contactFor(req, s.advertised(req)))
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond to re-INVITE", "call_id", callIDOf(req), "error", err)
	}
}

func (r *callRun) run() {
	dlg, err := r.s.dialogs.ReadInvite(r.req, r.tx)
	if err != nil {
		r.log.Warn("bad INVITE", "error", err)
		r.s.reply(r.req, r.tx, sip.StatusBadRequest, "Bad Request")
		r.end(sip.StatusBadRequest)
		return
	}
	r.dlg = dlg
	defer dlg.Close()

	// sipgo answers a matching CANCEL itself (200, then 487 to the INVITE)
	// and tells the transaction's OnCancel listeners.
	var once sync.Once
	onCancel := func(*sip.Request) {
		once.Do(func() {
			r.s.cancels.Add(1)
			close(r.canceled)
		})
	}
	if !r.tx.OnCancel(onCancel) {
		onCancel(nil)
	}

	r.provisional(sip.StatusTrying, "Trying", nil)

	switch r.sc.Kind {
	case KindBusy:
		r.final(sip.StatusBusyHere, "Busy Here")
	case KindDecline:
		r.final(sip.StatusGlobalDecline, "Decline")
	case KindNotFound:
		r.final(sip.StatusNotFound, "Not Found")
	case KindUnavailable:
		r.final(sip.StatusServiceUnavailable, "Service Unavailable")
	case KindRing:
		r.provisional(sip.StatusRinging, "Ringing", nil)
		t := time.NewTimer(maxRing)
		defer t.Stop()
		select {
		case <-r.canceled:
			r.endCanceled()
		case <-t.C:
			r.final(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable")
		case <-r.s.ctx.Done():
			r.final(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable")
		}
	case KindChallenge:
		if r.authorize() {
			r.answer()
		}
	default: // answer, hangup, early
		r.answer()
	}
}

// provisional sends a 1xx, with an SDP body when sdp is not nil.
func (r *callRun) provisional(code int, reason string, sdp []byte) {
	var hdrs []sip.Header
	hdrs = append(hdrs, r.s.contactFor(r.req, r.host))
	if sdp != nil {
		hdrs = append(hdrs, sip.NewHeader("Content-Type", "application/sdp"))
	}
	if err := r.dlg.Respond(code, reason, sdp, hdrs...); err != nil {
		r.log.Debug("provisional response", "code", code, "error", err)
	}
}

// final sends a non-2xx final response and ends the call. The transaction
// absorbs the caller's ACK; nothing here waits for it.
func (r *callRun) final(code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(r.dlg.InviteRequest, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := r.tx.Respond(res); err != nil {
		r.log.Debug("final response", "code", code, "error", err)
		select {
		case <-r.canceled:
			r.endCanceled()
			return
		default:
		}
	}
	r.end(code)
}

// endCanceled records a call the caller canceled; sipgo sent the 487.
func (r *callRun) endCanceled() {
	r.c.set(func(rec *CallRecord) { rec.Canceled = true })
	r.end(sip.StatusRequestTerminated)
}

// end closes the record with its final code and publishes it.
func (r *callRun) end(code int) {
	r.finish(code, nil)
}

// finish completes the record: final code, end time, duration, media
// statistics and files, then marks the call ended.
func (r *callRun) finish(code int, m *media) {
	if m != nil {
		m.stop()
	}
	now := time.Now()
	c := r.c
	c.mu.Lock()
	if c.rec.FinalCode == 0 || c.rec.FinalCode == sip.StatusUnauthorized {
		c.rec.FinalCode = code
	}
	end := now
	if !c.byeAt.IsZero() {
		end = c.byeAt
	}
	c.rec.EndedAt = end
	if !c.rec.AnsweredAt.IsZero() {
		c.rec.DurationMS = end.Sub(c.rec.AnsweredAt).Milliseconds()
	}
	var pcm []byte
	if c.rtp != nil && !c.rtp.discard {
		pcm = c.rtp.pcm()
	}
	c.mu.Unlock()

	if dir := r.s.cfg.RecordDir; dir != "" {
		r.writeFiles(dir, pcm)
	}

	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	r.s.markEnded(c)

	rec := c.snapshot()
	r.log.Info("call ended", "final_code", rec.FinalCode, "hung_up_by", rec.HungUpBy,
		"duration_ms", rec.DurationMS, "rtp_packets", rec.RTP.Packets, "canceled", rec.Canceled)
}

// writeFiles writes the WAV (when there was media) and the JSON summary.
func (r *callRun) writeFiles(dir string, pcm []byte) {
	c := r.c
	rec := c.snapshot()
	base := fileBase(dir, rec)
	var wavPath string
	if pcm != nil {
		wavPath = base + ".wav"
		if err := writeWAV(wavPath, pcm); err != nil {
			r.log.Warn("writing WAV", "path", wavPath, "error", err)
			wavPath = ""
		}
	}
	sumPath := base + ".json"
	rec.WAVPath, rec.SummaryPath = wavPath, sumPath
	if err := writeSummary(sumPath, rec); err != nil {
		r.log.Warn("writing call summary", "path", sumPath, "error", err)
		sumPath = ""
	}
	c.set(func(rec *CallRecord) { rec.WAVPath, rec.SummaryPath = wavPath, sumPath })
}

// chooseCodec returns the caller's first offered codec the simulator
// supports, and the offered telephone-event format if any.
func chooseCodec(offer []telephony.Format) (audio telephony.Format, dtmf *telephony.Format, ok bool) {
	for _, f := range offer {
		if f.Rate != 8000 {
			continue
		}
		switch f.Name {
		case telephony.FormatPCMU.Name, telephony.FormatPCMA.Name:
			if !ok {
				audio, ok = f, true
			}
		case telephony.FormatTelephoneEvent.Name:
			if dtmf == nil {
				d := f
				dtmf = &d
			}
		}
	}
	return audio, dtmf, ok
}

// answer negotiates media and runs an answered call (answer, hangup,
// early, challenge) to its end.
func (r *callRun) answer() {
	s, c := r.s, r.c
	offer, err := telephony.ParseSDP(r.req.Body())
	if err != nil || offer.Refused() {
		r.log.Info("unusable SDP offer", "error", err)
		r.final(sip.StatusNotAcceptableHere, "Not Acceptable Here", sip.NewHeader("Warning", `399 carrier-sim "no usable SDP offer"`))
		return
	}
	audio, dtmf, ok := chooseCodec(offer.Formats)
	if !ok {
		r.log.Info("no common codec", "offered", offer.Formats)
		r.final(sip.StatusNotAcceptableHere, "Not Acceptable Here", sip.NewHeader("Warning", `305 carrier-sim "no common codec: PCMU or PCMA required"`))
		return
	}
	formats := []telephony.Format{audio}
	if dtmf != nil {
		formats = append(formats, *dtmf)
	}

	m, err := newMedia(s.addr.Addr(), r.log)
	if err != nil {
		r.log.Error("RTP socket", "error", err)
		r.final(sip.StatusInternalServerError, "Server Internal Error")
		return
	}
	defer m.stop()

	var seed [8]byte
	_, _ = rand.Read(seed[:])
	body := telephony.BuildSDP(binary.BigEndian.Uint64(seed[:])>>1, r.host, m.local.Port(), formats)
	m.dtmf, m.silent = dtmf, r.sc.Silent
	c.mu.Lock()
	c.rtp = newRecorder(audio, dtmf, s.cfg.DiscardAudio)
	c.sdp = body
	c.rec.Codec, c.rec.PayloadType = audio.Name, audio.PT
	c.mu.Unlock()
	r.log.Debug("media negotiated", "codec", audio.Name, "remote", offer.Addr, "local", m.local)

	if r.sc.Kind == KindEarly {
		r.provisional(sip.StatusSessionInProgress, "Session Progress", body)
		m.start(offer.Addr, audio, c.record)
		t := time.NewTimer(r.sc.After)
		select {
		case <-t.C:
		case <-r.canceled:
			t.Stop()
			m.stop()
			r.endCanceled()
			return
		case <-s.ctx.Done():
			t.Stop()
			r.final(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable")
			return
		}
	} else {
		r.provisional(sip.StatusRinging, "Ringing", nil)
	}

	// The phone rings a moment before it is picked up. (sipgo handles each
	// datagram on its own goroutine: a 200 sent right after the 180 can
	// overtake it, which no real callee does.)
	ring := time.NewTimer(answerRing)
	select {
	case <-r.canceled:
		ring.Stop()
		m.stop()
		r.endCanceled()
		return
	case <-ring.C:
	}

	// 200 OK. sipgo retransmits it until the ACK arrives and blocks until
	// then, so it runs on a goroutine this function waits for.
	res := sip.NewSDPResponseFromRequest(r.dlg.InviteRequest, answerBody(r.sc.AnswerSDP, body, r.host, m.local.Port(), formats))
	res.AppendHeader(s.contactFor(r.req, r.host))
	answeredAt := time.Now()
	c.set(func(rec *CallRecord) { rec.AnsweredAt, rec.FinalCode = answeredAt, sip.StatusOK })
	acked := make(chan error, 1)
	go func() { acked <- r.dlg.WriteResponse(res) }()
	m.start(offer.Addr, audio, c.record)

	closing := false
	select {
	case err = <-acked:
	case <-s.ctx.Done():
		// Unblock WriteResponse: the dialog counts as confirmed and the
		// call is ended with a BYE below.
		closing = true
		r.confirm()
		err = <-acked
	}
	if err != nil {
		select {
		case <-r.canceled:
			// CANCEL won the race against our 200: sipgo sent 487.
			c.set(func(rec *CallRecord) { rec.AnsweredAt, rec.FinalCode = time.Time{}, 0 })
			m.stop()
			r.endCanceled()
			return
		default:
		}
		if r.dlg.LoadState() != sip.DialogStateEnded {
			// No ACK within 64*T1: RFC 3261 §13.3.1.4 says end it with BYE.
			r.log.Warn("no ACK for 200 OK", "error", err)
			r.bye(byeTimeout)
		}
		r.finish(sip.StatusOK, m)
		return
	}

	events := r.sc.Events
	if r.sc.Kind == KindHangup {
		events = append(append([]Event(nil), events...), Event{Kind: EventBye, At: r.sc.After})
		sortEvents(events)
	}
	if closing {
		r.bye(closeByeTimeout)
		r.finish(sip.StatusOK, m)
		return
	}
	for {
		var next <-chan time.Time
		if len(events) > 0 {
			t := time.NewTimer(time.Until(answeredAt.Add(events[0].At)))
			defer t.Stop()
			next = t.C
		}
		select {
		case <-r.dlg.Context().Done(): // the caller's BYE
			r.finish(sip.StatusOK, m)
			return
		case <-s.ctx.Done():
			r.bye(closeByeTimeout)
			r.finish(sip.StatusOK, m)
			return
		case <-next:
			ev := events[0]
			events = events[1:]
			if ev.Kind == EventBye {
				r.bye(byeTimeout)
				r.finish(sip.StatusOK, m)
				return
			}
			r.event(ev, m, body)
		}
	}
}

// event runs one scheduled mid-call event.
func (r *callRun) event(ev Event, m *media, sdp []byte) {
	r.log.Debug("mid-call event", "event", ev.Kind, "keys", ev.Keys)
	switch ev.Kind {
	case EventDTMF:
		m.sendDTMF(ev.Keys)
		r.c.set(func(rec *CallRecord) { rec.DTMFSent += ev.Keys })
	case EventGarbage:
		m.sendGarbage()
	case EventInfo:
		for _, k := range ev.Keys {
			body := fmt.Sprintf("Signal=%c\r\nDuration=160\r\n", k)
			code := r.request(sip.INFO, []byte(body), "application/dtmf-relay")
			r.c.set(func(rec *CallRecord) { rec.DTMFSent += string(k); rec.noteEvent(EventInfo, code) })
		}
	case EventReinvite, EventUpdate:
		method := sip.INVITE
		if ev.Kind == EventUpdate {
			method = sip.UPDATE
		}
		code := r.request(method, sdp, "application/sdp")
		r.c.set(func(rec *CallRecord) { rec.noteEvent(ev.Kind, code) })
	}
}

// request sends an in-dialog request to the caller and returns the
// response code (0 when none came). A re-INVITE's 2xx is ACKed.
func (r *callRun) request(method sip.RequestMethod, body []byte, contentType string) int {
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	target := r.dlg.InviteRequest.Contact().Address
	req := sip.NewRequest(method, *target.Clone())
	req.SetBody(body)
	req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	req.AppendHeader(r.s.contactFor(r.req, r.host))
	res, err := r.dlg.Do(ctx, req)
	if err != nil {
		r.log.Info("in-dialog request failed", "method", method, "error", err)
		return 0
	}
	if method == sip.INVITE && res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, req.Recipient)
		ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
		if to := res.To(); to != nil {
			ack.AppendHeader(sip.HeaderClone(req.From()))
			ack.AppendHeader(sip.HeaderClone(to))
		}
		if err := r.dlg.WriteRequest(ack); err != nil {
			r.log.Info("ACK of re-INVITE", "error", err)
		}
	}
	return res.StatusCode
}

// answerBody returns the 200 OK's SDP, broken as the scenario asks.
func answerBody(mode string, good []byte, host netip.Addr, port uint16, formats []telephony.Format) []byte {
	switch mode {
	case "nat":
		// A carrier behind NAT: the SDP names a port its media does not
		// come from; the caller must latch onto the real source.
		return telephony.BuildSDP(1, host, port+1, formats)
	case "elsewhere":
		// A carrier whose SDP names an address (a private one behind NAT,
		// a media server's) its media does not come from.
		return telephony.BuildSDP(1, host.Next(), port, formats)
	case "bad":
		return []byte("v=0\r\nthis is not SDP\r\nm=audio banana RTP/AVP\r\n")
	case "g729":
		return telephony.BuildSDP(1, host, port, []telephony.Format{{PT: 18, Name: "G729", Rate: 8000}})
	case "refuse":
		return telephony.BuildSDP(1, host, 0, []telephony.Format{telephony.FormatPCMU})
	case "none":
		return nil
	}
	return good
}

// bye hangs up from the simulator's side.
func (r *callRun) bye(timeout time.Duration) {
	r.c.byeFrom(hungUpByCallee, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.dlg.Bye(ctx); err != nil {
		r.log.Info("BYE not confirmed", "error", err)
	}
}

// confirm marks the dialog confirmed as if the ACK had arrived, which makes
// sipgo's WriteResponse stop waiting for it.
func (r *callRun) confirm() {
	ack := sip.NewRequest(sip.ACK, r.dlg.InviteRequest.Recipient)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: r.dlg.InviteRequest.CSeq().SeqNo, MethodName: sip.ACK})
	if err := r.dlg.ReadAck(ack, nil); err != nil {
		r.log.Debug("confirm dialog", "error", err)
	}
}

// failReason is the reason phrase of a fail=CODE option.
func failReason(code int) string {
	switch code {
	case 500:
		return "Server Internal Error"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Server Time-out"
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	}
	return "Failure"
}
