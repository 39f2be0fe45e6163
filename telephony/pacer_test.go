package telephony

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/vms-project/vms/tts"
)

// rtpReceiver is a loopback UDP socket that records every RTP packet it
// receives with its arrival time.
type rtpReceiver struct {
	conn *net.UDPConn
	addr netip.AddrPort

	mu      sync.Mutex
	packets []rxPacket
	more    chan struct{} // closed and replaced on every packet
	done    chan struct{}
}

type rxPacket struct {
	at  time.Time
	pkt rtp.Packet
}

func newRTPReceiver(tb testing.TB) *rtpReceiver {
	tb.Helper()
	conn := loopbackConn(tb)
	r := &rtpReceiver{conn: conn, addr: localAddr(conn), more: make(chan struct{}), done: make(chan struct{})}
	go r.read()
	tb.Cleanup(func() {
		_ = conn.Close()
		<-r.done
	})
	return r
}

func (r *rtpReceiver) read() {
	defer close(r.done)
	buf := make([]byte, 1500)
	for {
		n, _, err := r.conn.ReadFromUDPAddrPort(buf)
		at := time.Now()
		if err != nil {
			return
		}
		var p rtp.Packet
		if err := p.Unmarshal(bytes.Clone(buf[:n])); err != nil {
			continue
		}
		r.mu.Lock()
		r.packets = append(r.packets, rxPacket{at: at, pkt: p})
		close(r.more)
		r.more = make(chan struct{})
		r.mu.Unlock()
	}
}

// snapshot returns the packets received so far.
func (r *rtpReceiver) snapshot() []rxPacket {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rxPacket(nil), r.packets...)
}

// wait returns once n packets have arrived, or fails the test after d.
func (r *rtpReceiver) wait(tb testing.TB, n int, d time.Duration) []rxPacket {
	tb.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		got, more := len(r.packets), r.more
		r.mu.Unlock()
		if got >= n {
			return r.snapshot()
		}
		select {
		case <-more:
		case <-deadline:
			tb.Fatalf("received %d RTP packets in %s, want %d", got, d, n)
		}
	}
}

func loopbackConn(tb testing.TB) *net.UDPConn {
	tb.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

func localAddr(conn *net.UDPConn) netip.AddrPort {
	ap := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// testAudio returns frames 20 ms frames; every byte of frame i is byte(i),
// so a receiver can tell which frame a payload is.
func testAudio(frames int) *tts.Audio {
	p := make([]byte, frames*tts.FrameBytes)
	for i := range p {
		p[i] = byte(i / tts.FrameBytes)
	}
	return &tts.Audio{Codec: tts.PCMU, Payload: p}
}

func waitClosed(tb testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	tb.Helper()
	select {
	case <-ch:
		return
	default:
	}
	select {
	case <-ch:
	case <-time.After(d):
		tb.Fatalf("%s: not done after %s", what, d)
	}
}

// spacing returns the mean and the smallest gap between consecutive arrivals.
func spacing(pkts []rxPacket) (mean, minGap time.Duration) {
	minGap = time.Hour
	for i := 1; i < len(pkts); i++ {
		minGap = min(minGap, pkts[i].at.Sub(pkts[i-1].at))
	}
	return pkts[len(pkts)-1].at.Sub(pkts[0].at) / time.Duration(len(pkts)-1), minGap
}

// runningPacer returns a pacer whose goroutine has started and gone idle,
// as the Dialer's pacer is when a call is answered.
func runningPacer(tb testing.TB) *pacer {
	tb.Helper()
	p := newPacer(tts.FrameDuration)
	tb.Cleanup(p.close)
	rx := newRTPReceiver(tb)
	s := newStream(loopbackConn(tb), rx.addr, testAudio(1), 0)
	p.play(s)
	waitClosed(tb, s.finished, time.Second, "warm-up stream")
	rx.wait(tb, 1, time.Second)
	time.Sleep(2 * tts.FrameDuration) // let run go idle again
	return p
}

func TestPacerPacesOneStream(t *testing.T) {
	const frames = 50 // 1 s
	p := runningPacer(t)
	rx := newRTPReceiver(t)
	audio := testAudio(frames)
	s := newStream(loopbackConn(t), rx.addr, audio, 8)
	first := s.hdr // read before play: the pacer owns hdr afterwards

	p.play(s)
	waitClosed(t, s.finished, 5*time.Second, "stream of 1 s")
	got := rx.wait(t, frames, time.Second)

	if s.sent != frames || s.sendErr != nil || len(got) != frames {
		t.Fatalf("sent %d (err %v), received %d; want %d", s.sent, s.sendErr, len(got), frames)
	}
	for i, r := range got {
		h := r.pkt.Header
		if h.Version != 2 || h.PayloadType != 8 || h.SSRC != first.SSRC || h.Padding || h.Extension || len(h.CSRC) != 0 {
			t.Errorf("packet %d: header %+v, want version 2, PT 8, SSRC %#x, no padding, extension or CSRC", i, h, first.SSRC)
		}
		if want := first.SequenceNumber + uint16(i); h.SequenceNumber != want {
			t.Errorf("packet %d: sequence %d, want %d (initial + %d)", i, h.SequenceNumber, want, i)
		}
		if want := first.Timestamp + uint32(i*tts.FrameBytes); h.Timestamp != want {
			t.Errorf("packet %d: timestamp %d, want %d (initial + 160·%d)", i, h.Timestamp, want, i)
		}
		if h.Marker != (i == 0) {
			t.Errorf("packet %d: marker %v, want it on the first packet only", i, h.Marker)
		}
		if !bytes.Equal(r.pkt.Payload, audio.Frame(i)) {
			t.Errorf("packet %d: payload is not frame %d", i, i)
		}
	}
	mean, minGap := spacing(got)
	t.Logf("%d packets: mean spacing %v, smallest gap %v", len(got), mean, minGap)
	if d := mean - tts.FrameDuration; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("mean spacing %v, want 20ms ±1ms", mean)
	}
	if minGap < 10*time.Millisecond {
		t.Errorf("two packets %v apart: a burst (want none closer than 10ms); %s", minGap, describeGaps(got))
	}
}

// describeGaps lists the gaps around the smallest one and how far the
// packets after it sit from the first packet's 20 ms grid. A tick the
// pacer sent late and then caught up or restarted its schedule from shows as
// a long gap, a tiny one and (after a restart) a shifted grid; a receiver
// that was slow to read shows a long gap and a tiny one with the grid
// unchanged.
func describeGaps(pkts []rxPacket) string {
	if len(pkts) < 2 {
		return ""
	}
	at := 1
	for i := 2; i < len(pkts); i++ {
		if pkts[i].at.Sub(pkts[i-1].at) < pkts[at].at.Sub(pkts[at-1].at) {
			at = i
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "gaps before packet %d:", at)
	for i := max(1, at-2); i <= min(len(pkts)-1, at+2); i++ {
		fmt.Fprintf(&b, " %.2fms", float64(pkts[i].at.Sub(pkts[i-1].at))/1e6)
	}
	last := len(pkts) - 1
	off := pkts[last].at.Sub(pkts[0].at) - time.Duration(last)*tts.FrameDuration
	fmt.Fprintf(&b, "; the last packet is %.2fms off the first packet's grid", float64(off)/1e6)
	return b.String()
}

func TestPacerStreamsHaveRandomInitialState(t *testing.T) {
	audio := testAudio(1)
	var streams [4]*stream
	for i := range streams {
		streams[i] = newStream(nil, netip.AddrPort{}, audio, 0)
	}
	a, b := streams[0].hdr, streams[1].hdr
	// 32-bit values: equal by chance once in 2^32.
	if a.SSRC == b.SSRC {
		t.Errorf("two streams share SSRC %#x", a.SSRC)
	}
	if a.Timestamp == b.Timestamp {
		t.Errorf("two streams start at the same timestamp %d", a.Timestamp)
	}
	// 16-bit sequence numbers: four equal by chance once in 2^48.
	same := true
	for _, s := range streams[1:] {
		same = same && s.hdr.SequenceNumber == a.SequenceNumber
	}
	if same {
		t.Errorf("four streams start at the same sequence number %d", a.SequenceNumber)
	}
	for i, s := range streams {
		if !s.hdr.Marker || s.hdr.Version != 2 {
			t.Errorf("stream %d: first header %+v, want version 2 with the marker bit", i, s.hdr)
		}
	}
}

func TestPacerStopEndsStreamWithinOneTick(t *testing.T) {
	p := runningPacer(t)
	audio := testAudio(500) // 10 s: only stop ends these streams
	rxA, rxB := newRTPReceiver(t), newRTPReceiver(t)
	a := newStream(loopbackConn(t), rxA.addr, audio, 0)
	b := newStream(loopbackConn(t), rxB.addr, audio, 0)
	p.play(a)
	p.play(b)
	rxA.wait(t, 5, time.Second)

	stopped := time.Now()
	a.stop.Store(true)
	waitClosed(t, a.finished, time.Second, "stopped stream")
	took := time.Since(stopped)
	t.Logf("stream ended %v after stop", took)
	// The next tick drops it: at most one period, plus scheduling slack.
	if took > tts.FrameDuration+15*time.Millisecond {
		t.Errorf("stream ended %v after stop, want within one tick (20ms)", took)
	}
	sent := a.sent
	nB := len(rxB.snapshot())
	time.Sleep(5 * tts.FrameDuration)
	if n := len(rxA.snapshot()); n != sent {
		t.Errorf("receiver got %d packets, the stream counted %d: packets after the stream ended", n, sent)
	}
	if n := len(rxB.snapshot()); n < nB+3 {
		t.Errorf("the other stream sent %d packets in 100ms after its neighbour stopped, want about 5", n-nB)
	}
	if !b.stop.CompareAndSwap(false, true) {
		t.Fatal("other stream was stopped too")
	}
	waitClosed(t, b.finished, time.Second, "second stream")
}

func TestPacerCloseEndsAllStreams(t *testing.T) {
	p := newPacer(tts.FrameDuration)
	audio := testAudio(500)
	var streams []*stream
	var rxs []*rtpReceiver
	for range 3 {
		rx := newRTPReceiver(t)
		s := newStream(loopbackConn(t), rx.addr, audio, 0)
		p.play(s)
		streams, rxs = append(streams, s), append(rxs, rx)
	}
	for _, rx := range rxs {
		rx.wait(t, 2, time.Second)
	}

	closed := make(chan struct{})
	go func() {
		p.close() // returns once the pacer goroutine has exited
		close(closed)
	}()
	waitClosed(t, closed, time.Second, "pacer.close")
	waitClosed(t, p.done, 0, "pacer goroutine")
	for i, s := range streams {
		waitClosed(t, s.finished, 0, "stream after close")
		sent := s.sent
		time.Sleep(3 * tts.FrameDuration)
		if n := len(rxs[i].snapshot()); n != sent {
			t.Errorf("stream %d: received %d packets, sent %d before close: packets after close", i, n, sent)
		}
	}
	if len(p.streams) != 0 {
		t.Errorf("%d streams left after close", len(p.streams))
	}
}

func TestPacerCloseIdle(t *testing.T) {
	p := newPacer(tts.FrameDuration)
	closed := make(chan struct{})
	go func() {
		p.close()
		close(closed)
	}()
	waitClosed(t, closed, time.Second, "close of an idle pacer")
}

// An idle pacer must start a new stream at once, on a fresh schedule, not
// on a deadline left over from the last stream.
func TestPacerStartsAfterIdle(t *testing.T) {
	p := runningPacer(t)
	rx := newRTPReceiver(t)
	s1 := newStream(loopbackConn(t), rx.addr, testAudio(3), 0)
	p.play(s1)
	waitClosed(t, s1.finished, time.Second, "first stream")
	time.Sleep(5 * tts.FrameDuration)

	s2 := newStream(loopbackConn(t), rx.addr, testAudio(10), 0)
	played := time.Now()
	p.play(s2)
	waitClosed(t, s2.finished, 2*time.Second, "second stream")
	got := rx.wait(t, 13, time.Second)[3:]
	if d := got[0].at.Sub(played); d > 10*time.Millisecond {
		t.Errorf("first packet of a stream on an idle pacer left %v after play, want at once", d)
	}
	mean, minGap := spacing(got)
	if d := mean - tts.FrameDuration; d < -time.Millisecond || d > time.Millisecond || minGap < 10*time.Millisecond {
		t.Errorf("second stream: mean spacing %v, smallest gap %v; want 20ms ±1ms and no gap under 10ms", mean, minGap)
	}
}

// A tick that runs late (a GC pause, an overloaded core; simulated here by
// holding the pacer's lock) must not be followed at once by another tick:
// that would send two frames of every stream back to back, the burst the
// pacer promises never to send.

func TestPacerLateTickDoesNotBurst(t *testing.T) {
	for _, late := range []time.Duration{15 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond} {
		t.Run(late.String(), func(t *testing.T) {
			p := runningPacer(t)
			rx := newRTPReceiver(t)
			s := newStream(loopbackConn(t), rx.addr, testAudio(500), 0)
			p.play(s)
			rx.wait(t, 5, time.Second)
			// Start holding the lock just after a tick, so the next one is
			// late by about `late`.
			n := len(rx.snapshot())
			rx.wait(t, n+1, time.Second)
			p.mu.Lock()
			time.Sleep(tts.FrameDuration + late - time.Millisecond)
			p.mu.Unlock()
			got := rx.wait(t, n+8, time.Second)
			s.stop.Store(true)
			_, minGap := spacing(got[n:])
			t.Logf("tick %v late: smallest gap %v", late, minGap)
			if minGap < tts.FrameDuration/2 {
				t.Errorf("after a tick %v late two packets left %v apart, want at least 10ms", late, minGap)
			}
		})
	}
}

// A stream played on a pacer whose goroutine has not yet looked at its
// streams (play right after newPacer) must be paced like any other: the
// first two packets must not leave back to back.
func TestPacerFirstPlayDoesNotBurst(t *testing.T) {
	p := newPacer(tts.FrameDuration)
	defer p.close()
	rx := newRTPReceiver(t)
	s := newStream(loopbackConn(t), rx.addr, testAudio(5), 0)
	p.play(s)
	waitClosed(t, s.finished, time.Second, "stream")
	got := rx.wait(t, 5, time.Second)
	if _, minGap := spacing(got); minGap < tts.FrameDuration/2 {
		t.Errorf("two packets left %v apart, want at least 10ms", minGap)
	}
}
