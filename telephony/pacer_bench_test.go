package telephony

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/vms-project/vms/tts"
)

// drainedSink is a loopback UDP socket that a goroutine reads and discards,
// standing in for the callee's media port.
func drainedSink(tb testing.TB) netip.AddrPort {
	tb.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			if _, _, err := conn.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return localAddr(conn)
}

// undrainedSink is a loopback UDP socket nobody reads: once its buffer is
// full the kernel drops what arrives, and the sender still succeeds. It
// takes no CPU from the process under measurement.
func undrainedSink(tb testing.TB) netip.AddrPort {
	tb.Helper()
	return localAddr(loopbackConn(tb))
}

// BenchmarkStreamSend is the cost of one RTP packet on the send path:
// stream.send (header marshalled into the stream's reused buffer, one
// sendto on loopback) against the naive way (a fresh rtp.Packet and
// Marshal per packet). The RTPMarshal pair is the same without the socket.
func BenchmarkStreamSend(b *testing.B) {
	dst := drainedSink(b)
	conn := loopbackConn(b)
	audio := testAudio(50)
	frames := audio.Frames()

	b.Run("stream.send", func(b *testing.B) {
		s := newStream(conn, dst, audio, 0)
		b.ReportAllocs()
		for b.Loop() {
			if s.next == frames {
				s.next = 0
			}
			if !s.send() {
				b.Fatal(s.sendErr)
			}
		}
	})
	b.Run("naive-Marshal", func(b *testing.B) {
		hdr := newStream(nil, dst, audio, 0).hdr
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			pkt := &rtp.Packet{Header: hdr, Payload: audio.Frame(i)}
			buf, err := pkt.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := conn.WriteToUDPAddrPort(buf, dst); err != nil {
				b.Fatal(err)
			}
			hdr.Marker = false
			hdr.SequenceNumber++
			hdr.Timestamp += tts.FrameBytes
			i = (i + 1) % frames
		}
	})
}

func BenchmarkRTPMarshal(b *testing.B) {
	audio := testAudio(50)
	b.Run("MarshalTo-reused", func(b *testing.B) {
		s := newStream(nil, netip.AddrPort{}, audio, 0)
		b.ReportAllocs()
		for b.Loop() {
			n, _ := s.hdr.MarshalTo(s.buf[:rtpHeaderLen])
			copy(s.buf[n:], audio.Frame(s.next))
			s.hdr.SequenceNumber++
		}
	})
	b.Run("Packet.Marshal", func(b *testing.B) {
		hdr := newStream(nil, netip.AddrPort{}, audio, 0).hdr
		b.ReportAllocs()
		for b.Loop() {
			pkt := &rtp.Packet{Header: hdr, Payload: audio.Frame(0)}
			if _, err := pkt.Marshal(); err != nil {
				b.Fatal(err)
			}
			hdr.SequenceNumber++
		}
	})
}

// BenchmarkPacerTick is one pacer tick over N streams, each with its own
// socket as calls have, to one drained loopback sink. One op = one tick =
// N packets.
func BenchmarkPacerTick(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			dst := drainedSink(b)
			audio := testAudio(1000)
			p := &pacer{period: tts.FrameDuration} // run is not started: the benchmark ticks
			for range n {
				p.streams = append(p.streams, newStream(loopbackConn(b), dst, audio, 0))
			}
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			ticks, pos := 0, 0
			for b.Loop() {
				if pos == audio.Frames() { // rewind, so that no stream ever ends
					for _, s := range p.streams {
						s.next = 0
					}
					pos = 0
				}
				for _, s := range p.streams {
					s.lastSent = time.Time{} // back-to-back ticks: let every stream send
				}
				p.tick()
				ticks++
				pos++
			}
			runtime.ReadMemStats(&after)
			if len(p.streams) != n {
				b.Fatalf("%d of %d streams left after %d ticks", len(p.streams), n, ticks)
			}
			for _, s := range p.streams {
				if s.sendErr != nil {
					b.Fatal(s.sendErr)
				}
			}
			packets := float64(ticks * n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/packets, "ns/packet")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/packets, "allocs/packet")
		})
	}
}

// BenchmarkPacerLateness runs the real pacer (its own goroutine and timer)
// with N streams of 2 s and measures, for every tick, how late its packets
// left against the absolute schedule t0 + k·20 ms:
//
//   - first-*: the first stream of the tick, i.e. how late the tick started;
//   - last-*: the last stream of the tick, i.e. tick start lateness plus the
//     time to send everyone else's packet first: what the unluckiest callee
//     sees.
//
// t0 is the arrival of the first stream's first packet. Times are taken by
// two probe receivers (time.Now after the read returns), so they include
// loopback delivery and a goroutine wake-up; streams=1 shows that floor.
// The other streams send to a sink nobody reads, so the process spends no
// CPU receiving them. One op is one 2 s run; with -benchtime=1x or the
// default benchtime the run happens once.
func BenchmarkPacerLateness(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			const frames = 100 // 2 s
			audio := testAudio(frames)
			var first, last []time.Duration
			for b.Loop() {
				f, l := paceAndMeasure(b, n, audio)
				first, last = append(first, f...), append(last, l...)
			}
			reportLateness(b, "first", first)
			reportLateness(b, "last", last)
		})
	}
}

func paceAndMeasure(b *testing.B, n int, audio *tts.Audio) (first, last []time.Duration) {
	rxFirst, rxLast := newRTPReceiver(b), newRTPReceiver(b)
	if n == 1 {
		rxLast = rxFirst
	}
	sink := undrainedSink(b)
	streams := make([]*stream, n)
	for i := range streams {
		dst := sink
		switch i {
		case n - 1:
			dst = rxLast.addr
		case 0:
			dst = rxFirst.addr
		}
		streams[i] = newStream(loopbackConn(b), dst, audio, 0)
	}
	seq0 := streams[0].hdr.SequenceNumber
	seqLast0 := streams[n-1].hdr.SequenceNumber

	p := runningPacer(b) // started and idle, as the Dialer's pacer is
	// All streams join at once, so they share tick 0 (play, n times, could
	// let the goroutine tick between two of them).
	p.mu.Lock()
	p.streams = append(p.streams, streams...)
	p.mu.Unlock()
	p.wake <- struct{}{}
	for _, s := range streams {
		waitClosed(b, s.finished, 10*time.Second, "stream")
		if s.sent != audio.Frames() {
			b.Fatalf("stream sent %d of %d packets (%v)", s.sent, audio.Frames(), s.sendErr)
		}
	}
	pf := rxFirst.wait(b, audio.Frames(), time.Second)
	pl := rxLast.wait(b, audio.Frames(), time.Second)
	t0 := pf[0].at
	for _, r := range pf {
		if k := r.pkt.SequenceNumber - seq0; k > 0 {
			first = append(first, r.at.Sub(t0)-time.Duration(k)*tts.FrameDuration)
		}
	}
	for _, r := range pl {
		k := r.pkt.SequenceNumber - seqLast0
		last = append(last, r.at.Sub(t0)-time.Duration(k)*tts.FrameDuration)
	}
	return first, last
}

func reportLateness(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(q(0.50), name+"-p50-us")
	b.ReportMetric(q(0.99), name+"-p99-us")
	b.ReportMetric(float64(d[len(d)-1].Nanoseconds())/1e3, name+"-max-us")
}
