package sim

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/vms-project/vms/telephony"
)

const (
	frameDuration = 20 * time.Millisecond
	frameSamples  = 160
	// drainWindow is how long the receiver keeps reading queued packets
	// after the call ends, so media sent just before the BYE is counted.
	drainWindow = 50 * time.Millisecond
)

// media is the RTP side of one call: a UDP socket, a receiver goroutine that
// feeds the call's recorder and a sender goroutine that plays silence to the
// caller. Both goroutines are owned by media and end in stop.
type media struct {
	conn   *net.UDPConn
	local  netip.AddrPort
	remote netip.AddrPort
	audio  telephony.Format
	dtmf   *telephony.Format // negotiated telephone-event, if any
	silent bool              // send no audio (events still go)
	keys   chan string       // DTMF to send as RFC 4733 events
	log    *slog.Logger

	record func(p *rtp.Packet, at time.Time)

	startOnce sync.Once
	stopOnce  sync.Once
	quit      chan struct{}
	wg        sync.WaitGroup
}

// newMedia binds an RTP socket on ip, any port.
func newMedia(ip netip.Addr, log *slog.Logger) (*media, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, err
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return &media{
		conn:  conn,
		local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
		quit:  make(chan struct{}),
		keys:  make(chan string, 8),
		log:   log,
	}, nil
}

// start launches the receiver and, when remote is usable, the sender.
// It may be called more than once; only the first call counts.
func (m *media) start(remote netip.AddrPort, audio telephony.Format, record func(*rtp.Packet, time.Time)) {
	m.startOnce.Do(func() {
		m.remote, m.audio, m.record = remote, audio, record
		m.wg.Add(1)
		go m.receive()
		if remote.IsValid() && remote.Port() != 0 && !remote.Addr().IsUnspecified() {
			m.wg.Add(1)
			go m.send()
		}
	})
}

// stop ends both goroutines, reading what is already queued for up to
// drainWindow, and closes the socket. It is safe to call more than once and
// without start.
func (m *media) stop() {
	m.stopOnce.Do(func() {
		close(m.quit)
		_ = m.conn.SetReadDeadline(time.Now().Add(drainWindow))
		m.wg.Wait()
		_ = m.conn.Close()
	})
}

func (m *media) receive() {
	defer m.wg.Done()
	buf := make([]byte, 1500)
	var p rtp.Packet
	for {
		n, _, err := m.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			select {
			case <-m.quit:
				return
			default:
			}
			m.log.Debug("rtp read error", "error", err)
			continue
		}
		at := time.Now()
		if err := p.Unmarshal(buf[:n]); err != nil || p.Version != 2 {
			m.log.Debug("dropping non-RTP packet", "bytes", n, "error", err)
			continue
		}
		m.record(&p, at)
	}
}

// silence returns one 20 ms frame of G.711 silence.
func silence(f telephony.Format) []byte {
	b := byte(0xFF) // µ-law zero
	if f.Name == telephony.FormatPCMA.Name {
		b = 0xD5 // A-law zero
	}
	frame := make([]byte, frameSamples)
	for i := range frame {
		frame[i] = b
	}
	return frame
}

// send plays silence to the remote address on absolute 20 ms deadlines,
// marker bit on the first packet only.
func (m *media) send() {
	defer m.wg.Done()
	var seed [10]byte
	_, _ = rand.Read(seed[:])
	h := rtp.Header{
		Version:        2,
		Marker:         true,
		PayloadType:    m.audio.PT,
		SequenceNumber: binary.BigEndian.Uint16(seed[0:2]),
		Timestamp:      binary.BigEndian.Uint32(seed[2:6]),
		SSRC:           binary.BigEndian.Uint32(seed[6:10]),
	}
	payload := silence(m.audio)
	buf := make([]byte, h.MarshalSize()+len(payload))
	dst := m.remote
	var ev dtmfSender

	timer := time.NewTimer(0)
	defer timer.Stop()
	start := time.Now()
	for n := 0; ; n++ {
		select {
		case <-m.quit:
			return
		case <-timer.C:
		}
		if !ev.active() {
			select {
			case keys := <-m.keys:
				ev.queue(keys)
			default:
			}
		}
		var event []byte
		if ev.active() && m.dtmf != nil {
			event = ev.next(h, m.dtmf.PT, buf) // nil in the gap after an event
		}
		if event != nil {
			// One RFC 4733 packet instead of audio this tick.
			if _, err := m.conn.WriteToUDPAddrPort(event, dst); errors.Is(err, net.ErrClosed) {
				return
			}
			h.SequenceNumber++
			h.Marker = false
			h.Timestamp += frameSamples
		} else if !m.silent {
			hn, err := h.MarshalTo(buf)
			if err != nil {
				return
			}
			copy(buf[hn:], payload)
			if _, err := m.conn.WriteToUDPAddrPort(buf[:hn+len(payload)], dst); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				m.log.Debug("rtp write error", "error", err)
			}
			h.Marker = false
			h.SequenceNumber++
			h.Timestamp += frameSamples
		} else {
			h.Timestamp += frameSamples
		}

		// Next deadline is absolute; if we are late, skip frames rather
		// than burst to catch up (the timestamp jumps, the sequence does not).
		next := start.Add(time.Duration(n+1) * frameDuration)
		if late := time.Since(next); late > frameDuration {
			skip := int(late / frameDuration)
			n += skip
			h.Timestamp += uint32(skip * frameSamples)
			next = start.Add(time.Duration(n+1) * frameDuration)
		}
		timer.Reset(time.Until(next))
	}
}

// sendDTMF queues keys to be sent as RFC 4733 telephone-events.
func (m *media) sendDTMF(keys string) {
	select {
	case m.keys <- keys:
	default:
	}
}

// sendGarbage sends datagrams that are not RTP, and RTP of a payload type
// nobody negotiated, as misbehaving carriers do.
func (m *media) sendGarbage() {
	if !m.remote.IsValid() {
		return
	}
	junk := []byte{0x00, 0x01, 0xde, 0xad, 0xbe, 0xef}
	_, _ = m.conn.WriteToUDPAddrPort(junk, m.remote)
	_, _ = m.conn.WriteToUDPAddrPort([]byte("hello"), m.remote)
	h := rtp.Header{Version: 2, PayloadType: 99, SequenceNumber: 7, Timestamp: 1, SSRC: 0xabad1dea}
	pkt, _ := (&rtp.Packet{Header: h, Payload: make([]byte, 33)}).Marshal()
	for i := 0; i < 3; i++ {
		_, _ = m.conn.WriteToUDPAddrPort(pkt, m.remote)
	}
}

// dtmfSender lays out RFC 4733 events: per key five packets of a growing
// duration, the first with the marker bit, then the end packet three times,
// all with the RTP timestamp of the event's start; then a short gap.
type dtmfSender struct {
	keys  string
	n     int    // packets sent of the current key
	ts    uint32 // timestamp of the current event
	gap   int    // silent ticks left after an event
	begun bool
}

const (
	dtmfPackets    = 5 // 100 ms of tone
	dtmfEndRepeats = 3
	dtmfGapTicks   = 3
)

func (d *dtmfSender) queue(keys string) { d.keys += keys }
func (d *dtmfSender) active() bool      { return d.keys != "" || d.gap > 0 }

// next returns the packet for this tick, or nil during a gap.
func (d *dtmfSender) next(h rtp.Header, pt uint8, buf []byte) []byte {
	if d.gap > 0 {
		d.gap--
		return nil
	}
	if !d.begun {
		d.begun, d.n, d.ts = true, 0, h.Timestamp
	}
	end := d.n >= dtmfPackets
	h.PayloadType = pt
	h.Timestamp = d.ts
	h.Marker = d.n == 0
	code := strings.IndexByte("0123456789*#ABCD", d.keys[0])
	dur := uint16(min(d.n+1, dtmfPackets) * frameSamples)
	hn, _ := h.MarshalTo(buf)
	buf[hn] = byte(code)
	buf[hn+1] = 10 // volume -10 dBm0
	if end {
		buf[hn+1] |= 0x80
	}
	binary.BigEndian.PutUint16(buf[hn+2:], dur)
	d.n++
	if d.n >= dtmfPackets+dtmfEndRepeats {
		d.keys, d.begun, d.gap = d.keys[1:], false, dtmfGapTicks
	}
	return buf[:hn+4]
}
