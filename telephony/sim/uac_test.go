package sim_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/vms-project/vms/telephony"
)

// testUAC is a minimal sipgo caller: one UDP socket for SIP, a BYE handler,
// and RTP helpers.
type testUAC struct {
	t      *testing.T
	ua     *sipgo.UserAgent
	cli    *sipgo.Client
	dc     *sipgo.DialogClientCache
	close  func()
	addr   netip.AddrPort
	byes   chan time.Time
	closed chan struct{}
}

func newUAC(t *testing.T) *testUAC {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(log),
			sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {}),
		),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(log)),
	)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua,
		sipgo.WithClientLogger(log),
		sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientConnectionAddr(conn.LocalAddr().String()),
	)
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	u := &testUAC{
		t:      t,
		ua:     ua,
		cli:    cli,
		addr:   addr,
		byes:   make(chan time.Time, 4),
		closed: make(chan struct{}),
	}
	u.dc = sipgo.NewDialogClientCache(cli, sip.ContactHeader{
		Address: sip.Uri{Scheme: "sip", User: "vms", Host: "127.0.0.1", Port: int(addr.Port())},
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		at := time.Now()
		if err := u.dc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		u.byes <- at
	})
	go func() {
		defer close(u.closed)
		_ = srv.ServeUDP(conn)
	}()
	for pool := ua.TransportLayer().Pool("udp"); pool.Size() == 0; {
		time.Sleep(time.Millisecond) // wait until ServeUDP has registered conn
	}
	u.close = sync.OnceFunc(func() {
		_ = ua.Close()
		_ = conn.Close()
		<-u.closed
	})
	t.Cleanup(u.close)
	return u
}

// rtpPeer is the caller's media socket. It drains (and counts) what the
// simulator sends.
type rtpPeer struct {
	conn     *net.UDPConn
	addr     netip.AddrPort
	mu       sync.Mutex
	received int
	pts      map[uint8]int
	done     chan struct{}
	once     sync.Once
}

func newRTPPeer(t *testing.T) *rtpPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	p := &rtpPeer{
		conn: conn,
		addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		pts:  make(map[uint8]int),
		done: make(chan struct{}),
	}
	go func() {
		defer close(p.done)
		buf := make([]byte, 1500)
		var h rtp.Header
		for {
			n, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if _, err := h.Unmarshal(buf[:n]); err == nil {
				p.mu.Lock()
				p.received++
				p.pts[h.PayloadType]++
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *rtpPeer) close() {
	p.once.Do(func() {
		_ = p.conn.Close()
		<-p.done
	})
}

func (p *rtpPeer) count() (int, map[uint8]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pts := make(map[uint8]int, len(p.pts))
	for k, v := range p.pts {
		pts[k] = v
	}
	return p.received, pts
}

// send sends n 160-byte frames to dst with payload type pt, paced by gap,
// marker bit on the first packet only, sequence and timestamp wrapping
// during the run. It returns every payload byte sent.
func (p *rtpPeer) send(t *testing.T, dst netip.AddrPort, pt uint8, n int, gap time.Duration) []byte {
	t.Helper()
	h := rtp.Header{
		Version:        2,
		Marker:         true,
		PayloadType:    pt,
		SequenceNumber: 65530,
		Timestamp:      4294967000,
		SSRC:           0x5eed,
	}
	var sent []byte
	buf := make([]byte, 12+160)
	for i := 0; i < n; i++ {
		hn, err := h.MarshalTo(buf)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 160; j++ {
			buf[hn+j] = byte(i*7 + j)
		}
		sent = append(sent, buf[hn:hn+160]...)
		if _, err := p.conn.WriteToUDPAddrPort(buf[:hn+160], dst); err != nil {
			t.Fatal(err)
		}
		h.Marker = false
		h.SequenceNumber++
		h.Timestamp += 160
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	return sent
}

// call is one outgoing call of the test UAC.
type call struct {
	dialog    *sipgo.DialogClientSession
	responses []int
	answer    telephony.Media
	early     *telephony.Media // SDP of a 183, if any
	err       error
	at        map[int]time.Time // first time each status was seen
}

type callOpts struct {
	formats            []telephony.Format
	username, password string
	onResponse         func(code int)
}

// invite calls number at the simulator and waits for the answer.
func (u *testUAC) invite(ctx context.Context, sim netip.AddrPort, number string, media *rtpPeer, o callOpts) *call {
	u.t.Helper()
	if o.formats == nil {
		o.formats = []telephony.Format{telephony.FormatPCMU, telephony.FormatPCMA, telephony.FormatTelephoneEvent}
	}
	offer := telephony.BuildSDP(1, media.addr.Addr(), media.addr.Port(), o.formats)
	uri := sip.Uri{Scheme: "sip", User: number, Host: sim.Addr().String(), Port: int(sim.Port())}
	d, err := u.dc.Invite(ctx, uri, offer, sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		u.t.Fatalf("invite %s: %v", number, err)
	}
	c := &call{dialog: d, at: make(map[int]time.Time)}
	var mu sync.Mutex
	c.err = d.WaitAnswer(ctx, sipgo.AnswerOptions{
		Username: o.username,
		Password: o.password,
		OnResponse: func(res *sip.Response) error {
			mu.Lock()
			c.responses = append(c.responses, res.StatusCode)
			if _, ok := c.at[res.StatusCode]; !ok {
				c.at[res.StatusCode] = time.Now()
			}
			if res.StatusCode == 183 && len(res.Body()) > 0 {
				if m, err := telephony.ParseSDP(res.Body()); err == nil {
					c.early = &m
				}
			}
			mu.Unlock()
			if o.onResponse != nil {
				o.onResponse(res.StatusCode)
			}
			return nil
		},
	})
	if c.err == nil {
		if err := d.Ack(ctx); err != nil {
			u.t.Fatalf("ack: %v", err)
		}
		m, err := telephony.ParseSDP(d.InviteResponse.Body())
		if err != nil {
			u.t.Fatalf("answer SDP: %v\n%s", err, d.InviteResponse.Body())
		}
		c.answer = m
	}
	return c
}

// finalCode returns the SIP code of a failed WaitAnswer.
func finalCode(err error) int {
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) {
		return de.Res.StatusCode
	}
	return 0
}
