package telephony

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/vms-project/vms/tts"
)

// pacer sends the RTP of every playing call from one goroutine. It wakes on
// absolute deadlines (start + n·20 ms), sends one frame for each stream on
// each tick, and never bursts to catch up: a late tick sends one frame per
// stream and the schedule moves on. One shared scheduler serves thousands
// of streams where a ticker per call would not (see REFERENCE.md).
type pacer struct {
	period time.Duration

	mu        sync.Mutex
	streams   []*stream
	wake      chan struct{}
	quit      chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

func newPacer(period time.Duration) *pacer {
	p := &pacer{period: period, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// close stops the pacer; streams still playing are ended. It may be
// called more than once.
func (p *pacer) close() {
	p.closeOnce.Do(func() { close(p.quit) })
	<-p.done
}

// stream is one call's outgoing audio. Its packet buffer is reused for
// every packet, so sending allocates nothing.
type stream struct {
	conn  *net.UDPConn
	dst   atomic.Pointer[netip.AddrPort] // moved by symmetric RTP latching
	audio *tts.Audio
	// pending, when set, replaces audio from its first frame on the next
	// tick (replay, acknowledgement prompt).
	pending atomic.Pointer[tts.Audio]
	hdr     rtp.Header
	buf     [rtpHeaderLen + tts.FrameBytes]byte
	next    int // next frame index
	// lastSent is when the pacer sent the stream's last packet.
	lastSent time.Time

	stop     atomic.Bool
	finished chan struct{} // closed when the pacer drops the stream
	sent     int           // packets sent; read after finished
	sendErr  error         // last send error; read after finished
}

const rtpHeaderLen = 12

func newStream(conn *net.UDPConn, dst netip.AddrPort, audio *tts.Audio, pt uint8) *stream {
	var seed [10]byte
	_, _ = rand.Read(seed[:])
	s := &stream{
		conn: conn, audio: audio, finished: make(chan struct{}),
		hdr: rtp.Header{
			Version:        2,
			PayloadType:    pt,
			SequenceNumber: binary.BigEndian.Uint16(seed[0:2]),
			Timestamp:      binary.BigEndian.Uint32(seed[2:6]),
			SSRC:           binary.BigEndian.Uint32(seed[6:10]),
			Marker:         true, // first packet of the talkspurt only
		},
	}
	s.dst.Store(&dst)
	return s
}

// destination is where packets go.
func (s *stream) destination() netip.AddrPort { return *s.dst.Load() }

// setDestination moves the stream, e.g. onto the source address of the
// callee's RTP.
func (s *stream) setDestination(a netip.AddrPort) { s.dst.Store(&a) }

// replay makes the stream play audio from its start on the next tick,
// continuing its sequence numbers and timestamps.
func (s *stream) replay(audio *tts.Audio) { s.pending.Store(audio) }

// play adds s to the schedule; it starts on the next tick.
func (p *pacer) play(s *stream) {
	p.mu.Lock()
	p.streams = append(p.streams, s)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pacer) run() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	next := time.Now()
	for {
		p.mu.Lock()
		idle := len(p.streams) == 0
		p.mu.Unlock()
		if idle {
			select {
			case <-p.wake:
				next = time.Now()
			case <-p.quit:
				p.endAll()
				return
			}
		}
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-p.quit:
				p.endAll()
				return
			}
		}
		p.tick()
		// The next tick is the next point of the grid still ahead: after a
		// late tick the missed ones are skipped, never caught up.
		next = next.Add(p.period)
		if now := time.Now(); !next.After(now) {
			next = next.Add((now.Sub(next)/p.period + 1) * p.period)
		}
	}
}

// tick sends one frame for every stream and drops finished ones. A stream
// whose last packet left less than half a period ago (a tick that ran late,
// then one on time) waits for the next tick: packets of one stream are never
// sent in a burst.
func (p *pacer) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	kept := p.streams[:0]
	for i, s := range p.streams {
		if i%64 == 63 {
			now = time.Now() // sending takes microseconds per packet
		}
		if a := s.pending.Swap(nil); a != nil {
			s.audio, s.next = a, 0
		}
		if s.stop.Load() || s.next >= s.audio.Frames() {
			close(s.finished)
			continue
		}
		if now.Sub(s.lastSent) >= p.period/2 {
			if !s.send() {
				close(s.finished)
				continue
			}
			s.lastSent = now
		}
		kept = append(kept, s)
	}
	for i := len(kept); i < len(p.streams); i++ {
		p.streams[i] = nil
	}
	p.streams = kept
}

// send writes the next frame. It returns false when the socket failed.
func (s *stream) send() bool {
	n, _ := s.hdr.MarshalTo(s.buf[:rtpHeaderLen])
	copy(s.buf[n:], s.audio.Frame(s.next))
	if _, err := s.conn.WriteToUDPAddrPort(s.buf[:n+tts.FrameBytes], *s.dst.Load()); err != nil {
		s.sendErr = err
		return false
	}
	s.next++
	s.sent++
	s.hdr.Marker = false
	s.hdr.SequenceNumber++
	s.hdr.Timestamp += tts.FrameBytes
	return true
}

func (p *pacer) endAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.streams {
		close(s.finished)
	}
	p.streams = nil
}
