package sim

import (
	"maps"
	"math"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/vms-project/vms/telephony"
)

// CallRecord is what the simulator saw of one call (one Call-ID).
type CallRecord struct {
	CallID string `json:"call_id"`
	// From is the user part of the From header, To the user part of the
	// Request-URI (the called number).
	From string `json:"from"`
	To   string `json:"to"`
	// Scenario is the scenario the call ran, as ParseScenario reads it.
	Scenario string `json:"scenario"`
	// FinalCode is the final SIP status the simulator sent (200, 486, 487...),
	// 0 while the call has no final response.
	FinalCode int  `json:"final_code"`
	Canceled  bool `json:"canceled"`
	// InviteAt is when the first INVITE arrived, AnsweredAt when the
	// simulator sent its 200 OK, EndedAt when the call ended.
	InviteAt   time.Time `json:"invite_at"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	// DurationMS runs from the 200 OK to the BYE, received or sent.
	DurationMS int64 `json:"duration_ms"`
	// HungUpBy is "caller" (it sent BYE), "callee" (the simulator sent BYE)
	// or "" (not answered or still up).
	HungUpBy string `json:"hung_up_by"`
	// Codec and PayloadType are the negotiated audio format.
	Codec       string `json:"codec"`
	PayloadType uint8  `json:"payload_type"`
	// DTMF holds the RFC 4733 digits received, in order.
	DTMF string `json:"dtmf"`
	// DTMFSent holds the keys the simulator sent (RFC 4733 and INFO).
	DTMFSent string `json:"dtmf_sent,omitempty"`
	// Events maps each mid-call request the simulator sent (reinvite,
	// update, info) to the caller's last response code (0: none).
	Events map[string]int `json:"events,omitempty"`
	RTP    RTPStats       `json:"rtp"`
	// Payload is every received audio payload byte, in arrival order.
	Payload []byte `json:"-"`
	// WAVPath and SummaryPath name the files written for the call, if any.
	WAVPath     string `json:"wav_path,omitempty"`
	SummaryPath string `json:"summary_path,omitempty"`
}

func (r *CallRecord) noteEvent(kind string, code int) {
	if r.Events == nil {
		r.Events = map[string]int{}
	}
	r.Events[kind] = code
}

// Ended reports whether the call is over.
func (r CallRecord) Ended() bool { return !r.EndedAt.IsZero() }

// RTPStats describes the RTP stream received on a call.
type RTPStats struct {
	// Packets counts every RTP packet received (audio and telephone-event).
	Packets int `json:"packets"`
	// SeqGaps counts sequence numbers skipped (lost or not yet arrived).
	SeqGaps int `json:"seq_gaps"`
	// OutOfOrder counts packets older than, or equal to, the newest seen.
	OutOfOrder int `json:"out_of_order"`
	// Markers counts packets with the marker bit set.
	Markers int `json:"markers"`
	// TimestampSteps counts the timestamp differences between consecutive
	// in-order packets of one SSRC (160 for 20 ms G.711).
	TimestampSteps map[uint32]int `json:"timestamp_steps"`
	// PayloadTypes counts packets per payload type.
	PayloadTypes map[uint8]int `json:"payload_types"`
	// JitterMS is the RFC 3550 interarrival jitter of the audio, in ms.
	JitterMS float64 `json:"jitter_ms"`
	// FirstAt and LastAt are the arrival times of the first and last packet.
	FirstAt time.Time `json:"first_at,omitzero"`
	LastAt  time.Time `json:"last_at,omitzero"`
	// SSRCs counts distinct synchronisation sources.
	SSRCs int `json:"ssrcs"`
}

func (s RTPStats) clone() RTPStats {
	s.TimestampSteps = maps.Clone(s.TimestampSteps)
	s.PayloadTypes = maps.Clone(s.PayloadTypes)
	return s
}

// rtpRecorder accumulates the statistics, payload and decoded audio of one
// call. It is not safe for concurrent use; call.mu guards it.
type rtpRecorder struct {
	audio telephony.Format
	dtmf  *telephony.Format

	stats   RTPStats
	ssrcs   map[uint32]struct{}
	discard bool // keep statistics only
	payload []byte
	runs    []codecRun // which codec each stretch of payload is in
	digits  []byte

	haveLast bool
	lastSSRC uint32
	lastSeq  uint16
	lastTS   uint32

	haveJitter  bool
	jitArrival  time.Time
	jitTS       uint32
	jitterUnits float64

	dtmfEnded map[uint32]bool
}

// codecRun is a stretch of n payload bytes in one codec.
type codecRun struct {
	alaw bool
	n    int
}

func newRecorder(audio telephony.Format, dtmf *telephony.Format, discard bool) *rtpRecorder {
	return &rtpRecorder{
		audio:   audio,
		dtmf:    dtmf,
		discard: discard,
		stats: RTPStats{
			TimestampSteps: make(map[uint32]int),
			PayloadTypes:   make(map[uint8]int),
		},
		ssrcs:     make(map[uint32]struct{}),
		dtmfEnded: make(map[uint32]bool),
	}
}

// add records one packet that arrived at.
func (r *rtpRecorder) add(p *rtp.Packet, at time.Time) {
	st := &r.stats
	st.Packets++
	if st.FirstAt.IsZero() {
		st.FirstAt = at
	}
	st.LastAt = at
	st.PayloadTypes[p.PayloadType]++
	if p.Marker {
		st.Markers++
	}
	if _, ok := r.ssrcs[p.SSRC]; !ok {
		r.ssrcs[p.SSRC] = struct{}{}
		st.SSRCs = len(r.ssrcs)
	}

	switch {
	case !r.haveLast || p.SSRC != r.lastSSRC:
		// First packet of a stream: nothing to compare with.
		r.haveLast, r.lastSSRC, r.lastSeq, r.lastTS = true, p.SSRC, p.SequenceNumber, p.Timestamp
		r.haveJitter = false
	default:
		delta := int16(p.SequenceNumber - r.lastSeq)
		if delta > 0 {
			st.SeqGaps += int(delta) - 1
			st.TimestampSteps[p.Timestamp-r.lastTS]++
			r.lastSeq, r.lastTS = p.SequenceNumber, p.Timestamp
		} else {
			st.OutOfOrder++
		}
	}

	switch {
	case r.dtmf != nil && p.PayloadType == r.dtmf.PT:
		r.addDTMF(p)
	case p.PayloadType == telephony.FormatPCMU.PT || p.PayloadType == telephony.FormatPCMA.PT || p.PayloadType == r.audio.PT:
		r.addAudio(p, at)
	}
}

func (r *rtpRecorder) addAudio(p *rtp.Packet, at time.Time) {
	if !r.discard && len(p.Payload) > 0 {
		r.payload = append(r.payload, p.Payload...)
		alaw := p.PayloadType == telephony.FormatPCMA.PT ||
			(p.PayloadType == r.audio.PT && r.audio.Name == telephony.FormatPCMA.Name)
		if n := len(r.runs); n > 0 && r.runs[n-1].alaw == alaw {
			r.runs[n-1].n += len(p.Payload)
		} else {
			r.runs = append(r.runs, codecRun{alaw: alaw, n: len(p.Payload)})
		}
	}

	// RFC 3550 §6.4.1 / A.8: J += (|D(i-1,i)| - J) / 16, in timestamp units.
	rate := float64(r.audio.Rate)
	if rate == 0 {
		rate = 8000
	}
	if r.haveJitter {
		arrival := at.Sub(r.jitArrival).Seconds() * rate
		d := arrival - float64(int32(p.Timestamp-r.jitTS))
		r.jitterUnits += (math.Abs(d) - r.jitterUnits) / 16
		r.stats.JitterMS = r.jitterUnits / rate * 1000
	}
	r.haveJitter, r.jitArrival, r.jitTS = true, at, p.Timestamp
}

// dtmfDigits maps RFC 4733 event codes to digits.
const dtmfDigits = "0123456789*#ABCD"

func (r *rtpRecorder) addDTMF(p *rtp.Packet) {
	if len(p.Payload) < 4 {
		return
	}
	event, end := p.Payload[0], p.Payload[1]&0x80 != 0
	if !end || r.dtmfEnded[p.Timestamp] {
		return // end packets come three times: dedupe on the event timestamp
	}
	r.dtmfEnded[p.Timestamp] = true
	if int(event) < len(dtmfDigits) {
		r.digits = append(r.digits, dtmfDigits[event])
	}
}

// pcm decodes the received audio to 16-bit little-endian samples.
func (r *rtpRecorder) pcm() []byte {
	out := make([]byte, 0, 2*len(r.payload))
	off := 0
	for _, run := range r.runs {
		for _, b := range r.payload[off : off+run.n] {
			var s int16
			if run.alaw {
				s = g711.DecodeAlawFrame(b)
			} else {
				s = g711.DecodeUlawFrame(b)
			}
			out = append(out, byte(s), byte(uint16(s)>>8))
		}
		off += run.n
	}
	return out
}
