package sim

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
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

	timer := time.NewTimer(0)
	defer timer.Stop()
	start := time.Now()
	for n := 0; ; n++ {
		select {
		case <-m.quit:
			return
		case <-timer.C:
		}
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
