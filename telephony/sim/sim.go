package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/vms-project/vms/telephony"
)

// Config configures a Simulator. The zero value listens on a free loopback
// UDP port and records nothing to disk.
type Config struct {
	// Listen is the UDP address for SIP, "127.0.0.1:0" by default.
	Listen string
	// RecordDir receives a WAV file and a JSON summary per call; "" writes
	// no files.
	RecordDir string
	// Scenarios maps called numbers (Request-URI users) to scenarios and
	// wins over the last-two-digits table of the package documentation.
	Scenarios map[string]Scenario
	// Username, Password and Realm are the digest credentials of the
	// "challenge" scenario; defaults "vms", "secret", "carrier-sim".
	Username, Password, Realm string
	// DiscardAudio keeps RTP statistics only: no CallRecord.Payload and no
	// WAV file. Benchmarks with many long calls use it to bound memory.
	DiscardAudio bool
	// TLS, when set, also serves SIP over TLS on a free TCP port of the
	// listen address (TLSAddr).
	TLS *tls.Config
	// TCP also serves SIP over TCP on a free port of the listen address (TCPAddr).
	TCP bool
	// RequireTLS refuses INVITEs that did not arrive over TLS (403).
	RequireTLS bool
	// Logger receives the simulator's logs (sipgo's too); nil discards them.
	Logger *slog.Logger
}

// Simulator is a running carrier simulator. Its methods are safe for
// concurrent use.
type Simulator struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // canceled by Close: calls in progress end
	cancel context.CancelFunc

	conn      net.PacketConn
	addr      netip.AddrPort
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	client    *sipgo.Client
	dialogs   *sipgo.DialogServerCache
	serveDone chan struct{}
	stopWatch func() bool

	invites atomic.Int64

	failMu  sync.Mutex
	failed  map[string]int // INVITEs failed so far per number (fail=CODExN)
	cancels atomic.Int64

	tcpLn     net.Listener
	tcpAddr   netip.AddrPort
	tcpDone   chan struct{}
	tlsLn     net.Listener
	tlsAddr   netip.AddrPort
	tlsDone   chan struct{}
	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed when Close has finished

	handlers sync.WaitGroup // INVITE handlers in progress

	mu      sync.Mutex
	closed  bool
	calls   []*call          // in order of first INVITE
	byID    map[string]*call // latest call per Call-ID
	ended   []*call          // in order of ending
	endedCh chan struct{}    // closed and replaced whenever a call ends
	nonces  map[string]string
}

// Start binds the SIP socket, starts serving and returns once the simulator
// accepts calls. Canceling ctx closes the simulator, as Close does.
func Start(ctx context.Context, cfg Config) (*Simulator, error) {
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.RecordDir != "" {
		if err := os.MkdirAll(cfg.RecordDir, 0o755); err != nil {
			return nil, fmt.Errorf("carrier-sim: record dir: %w", err)
		}
	}

	conn, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("carrier-sim: listen %s: %w", cfg.Listen, err)
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	addr := netip.AddrPortFrom(local.Addr().Unmap(), local.Port())

	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("vms-carrier-sim"),
		sipgo.WithUserAgentHostname(hostOrLoopback(addr.Addr()).String()),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(log),
			sip.WithTransactionLayerUnhandledResponseHandler(func(r *sip.Response) {
				log.Debug("response outside any transaction (late retransmission)", "response", r.StartLine())
			}),
		),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(log)),
	)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("carrier-sim: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		conn.Close()
		return nil, fmt.Errorf("carrier-sim: server: %w", err)
	}
	// Requests the simulator sends (BYE) leave from the listening socket,
	// so callers see the carrier at one address.
	client, err := sipgo.NewClient(ua,
		sipgo.WithClientLogger(log),
		sipgo.WithClientHostname(hostOrLoopback(addr.Addr()).String()),
		sipgo.WithClientConnectionAddr(conn.LocalAddr().String()),
	)
	if err != nil {
		ua.Close()
		conn.Close()
		return nil, fmt.Errorf("carrier-sim: client: %w", err)
	}

	s := &Simulator{
		cfg:       cfg,
		log:       log,
		conn:      conn,
		addr:      addr,
		ua:        ua,
		srv:       srv,
		client:    client,
		serveDone: make(chan struct{}),
		done:      make(chan struct{}),
		byID:      make(map[string]*call),
		endedCh:   make(chan struct{}),
		nonces:    make(map[string]string),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.dialogs = sipgo.NewDialogServerCache(client, *s.contact(hostOrLoopback(addr.Addr())))

	srv.OnInvite(s.handleInvite)
	srv.OnAck(s.handleAck)
	srv.OnBye(s.handleBye)
	srv.OnCancel(s.handleStrayCancel)
	srv.OnOptions(s.handleOptions)

	go func() {
		defer close(s.serveDone)
		if err := srv.ServeUDP(conn); err != nil {
			log.Debug("carrier-sim: serve ended", "error", err)
		}
	}()
	if err := telephony.WaitServing(ua, s.serveDone); err != nil {
		s.cancel()
		_ = ua.Close()
		_ = conn.Close()
		<-s.serveDone
		return nil, err
	}
	if cfg.TCP {
		if err := s.serveTCP(); err != nil {
			s.cancel()
			_ = ua.Close()
			_ = conn.Close()
			<-s.serveDone
			return nil, err
		}
	}
	if cfg.TLS != nil {
		if err := s.serveTLS(); err != nil {
			s.cancel()
			_ = ua.Close()
			_ = conn.Close()
			<-s.serveDone
			return nil, err
		}
	}
	// Under mu: the AfterFunc goroutine's Close reads it (a data race otherwise).
	s.mu.Lock()
	s.stopWatch = context.AfterFunc(ctx, func() { _ = s.Close() })
	s.mu.Unlock()

	log.Info("carrier-sim listening", "addr", addr.String())
	return s, nil
}

// validate applies defaults and checks the scenario table, reporting every
// problem together.
func validate(cfg *Config) error {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Username == "" {
		cfg.Username = "vms"
	}
	if cfg.Password == "" {
		cfg.Password = "secret"
	}
	if cfg.Realm == "" {
		cfg.Realm = "carrier-sim"
	}
	var errs []error
	table := make(map[string]Scenario, len(cfg.Scenarios))
	for number, sc := range cfg.Scenarios {
		if _, err := ParseScenario(sc.Kind); err != nil {
			errs = append(errs, fmt.Errorf("carrier-sim: scenarios[%q]: %w", number, err))
			continue
		}
		table[number] = normalize(sc)
	}
	cfg.Scenarios = table
	return errors.Join(errs...)
}

// hostOrLoopback returns ip, or the loopback address of its family when ip
// is unspecified (listening on all interfaces).
func hostOrLoopback(ip netip.Addr) netip.Addr {
	if !ip.IsUnspecified() {
		return ip
	}
	if ip.Is6() {
		return netip.IPv6Loopback()
	}
	return netip.MustParseAddr("127.0.0.1")
}

// contact is the Contact header the simulator puts in its responses.
func (s *Simulator) contact(host netip.Addr) *sip.ContactHeader {
	return &sip.ContactHeader{Address: sip.Uri{
		Scheme: "sip",
		User:   "carrier-sim",
		Host:   host.String(),
		Port:   int(s.addr.Port()),
	}}
}

// contactFor is the Contact for responses to req: the TLS (TCP) listener for
// a request that came over TLS (TCP), so in-dialog requests come back so.
func (s *Simulator) contactFor(req *sip.Request, host netip.Addr) *sip.ContactHeader {
	c := s.contact(host)
	switch {
	case strings.EqualFold(req.Transport(), "TLS") && s.tlsAddr.IsValid():
		c.Address.Port = int(s.tlsAddr.Port())
		c.Address.UriParams = sip.NewParams()
		c.Address.UriParams.Add("transport", "tls")
	case strings.EqualFold(req.Transport(), "TCP") && s.tcpAddr.IsValid():
		c.Address.Port = int(s.tcpAddr.Port())
		c.Address.UriParams = sip.NewParams()
		c.Address.UriParams.Add("transport", "tcp")
	}
	return c
}

// advertised returns the IP the simulator gives a caller in Contact and SDP:
// the listening IP, or when listening on all interfaces the IP the caller
// addressed the INVITE to.
func (s *Simulator) advertised(req *sip.Request) netip.Addr {
	if !s.addr.Addr().IsUnspecified() {
		return s.addr.Addr()
	}
	host := strings.TrimSuffix(strings.TrimPrefix(req.Recipient.Host, "["), "]")
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() && ip.Zone() == "" {
		return ip.Unmap()
	}
	return hostOrLoopback(s.addr.Addr())
}

// serveTLS listens for SIP over TLS on the listen IP, any port.
func (s *Simulator) serveTLS() error {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(s.addr.Addr(), 0).String())
	if err != nil {
		return fmt.Errorf("carrier-sim: TLS listen: %w", err)
	}
	s.tlsLn = tls.NewListener(ln, s.cfg.TLS)
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	s.tlsAddr = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	s.tlsDone = make(chan struct{})
	go func() {
		defer close(s.tlsDone)
		if err := s.srv.ServeTLS(s.tlsLn); err != nil {
			s.log.Debug("carrier-sim: TLS serve ended", "error", err)
		}
	}()
	return nil
}

// serveTCP listens for SIP over TCP on the listen IP, any port.
func (s *Simulator) serveTCP() error {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(s.addr.Addr(), 0).String())
	if err != nil {
		return fmt.Errorf("carrier-sim: TCP listen: %w", err)
	}
	s.tcpLn = ln
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	s.tcpAddr = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	s.tcpDone = make(chan struct{})
	go func() {
		defer close(s.tcpDone)
		if err := s.srv.ServeTCP(ln); err != nil {
			s.log.Debug("carrier-sim: TCP serve ended", "error", err)
		}
	}()
	return nil
}

// TCPAddr is the SIP over TCP address (zero without Config.TCP).
func (s *Simulator) TCPAddr() netip.AddrPort { return s.tcpAddr }

// TLSAddr is the SIP over TLS address (zero without Config.TLS).
func (s *Simulator) TLSAddr() netip.AddrPort { return s.tlsAddr }

// Addr returns the address the SIP socket is bound to.
func (s *Simulator) Addr() netip.AddrPort { return s.addr }

// failNext reports whether this INVITE for number is one of the first n
// that a fail=CODExN scenario refuses.
func (s *Simulator) failNext(number string, n int) bool {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.failed == nil {
		s.failed = map[string]int{}
	}
	if s.failed[number] >= n {
		return false
	}
	s.failed[number]++
	return true
}

// Invites returns the number of INVITE requests received, counting the
// re-sent ones of digest authentication but not retransmissions.
func (s *Simulator) Invites() int { return int(s.invites.Load()) }

// Cancels returns the number of CANCEL requests received.
func (s *Simulator) Cancels() int { return int(s.cancels.Load()) }

// Calls returns a snapshot of every call, ended or in progress, in the order
// their first INVITE arrived.
func (s *Simulator) Calls() []CallRecord {
	s.mu.Lock()
	calls := append([]*call(nil), s.calls...)
	s.mu.Unlock()
	out := make([]CallRecord, len(calls))
	for i, c := range calls {
		out[i] = c.snapshot()
	}
	return out
}

// WaitEnded blocks until at least n calls have ended and returns the ended
// calls in the order they ended. It returns early with the calls ended so
// far and an error when ctx is done or the simulator is closed.
func (s *Simulator) WaitEnded(ctx context.Context, n int) ([]CallRecord, error) {
	for {
		s.mu.Lock()
		ended := append([]*call(nil), s.ended...)
		ch := s.endedCh
		s.mu.Unlock()
		if len(ended) >= n {
			return snapshots(ended), nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return snapshots(ended), fmt.Errorf("carrier-sim: %d of %d calls ended: %w", len(ended), n, ctx.Err())
		case <-s.done:
			s.mu.Lock()
			ended = append([]*call(nil), s.ended...)
			s.mu.Unlock()
			if len(ended) >= n {
				return snapshots(ended), nil
			}
			return snapshots(ended), fmt.Errorf("carrier-sim: closed with %d of %d calls ended", len(ended), n)
		}
	}
}

func snapshots(calls []*call) []CallRecord {
	out := make([]CallRecord, len(calls))
	for i, c := range calls {
		out[i] = c.snapshot()
	}
	return out
}

// Close ends calls in progress (BYE for answered calls, 480 for ringing
// ones), stops serving and closes every socket. When it returns every
// goroutine the simulator started has exited. It is safe to call more than
// once.
func (s *Simulator) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		stop := s.stopWatch
		s.closed = true
		s.mu.Unlock()
		if stop != nil {
			stop()
		}
		s.cancel()
		s.handlers.Wait()

		err := s.ua.Close()
		if cerr := s.conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = errors.Join(err, cerr)
		}
		<-s.serveDone
		if s.tlsLn != nil {
			_ = s.tlsLn.Close()
			<-s.tlsDone
		}
		if s.tcpLn != nil {
			_ = s.tcpLn.Close()
			<-s.tcpDone
		}
		s.closeErr = err
		close(s.done)
		s.log.Info("carrier-sim closed")
	})
	<-s.done
	return s.closeErr
}

// enter registers an INVITE handler unless the simulator is closing.
func (s *Simulator) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.handlers.Add(1)
	return true
}

// callFor returns the record for an initial INVITE: the challenged call of
// the same Call-ID when this is its authenticated retry, else a new one.
func (s *Simulator) callFor(req *sip.Request, sc Scenario, now time.Time) *call {
	callID := req.CallID().Value()
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.byID[callID]; c != nil && c.resumeChallenged() {
		return c
	}
	from := ""
	if f := req.From(); f != nil {
		from = f.Address.User
		if from == "" {
			from = f.Address.String()
		}
	}
	c := &call{rec: CallRecord{
		CallID:   callID,
		From:     from,
		To:       req.Recipient.User,
		Scenario: sc.String(),
		InviteAt: now,
	}}
	s.calls = append(s.calls, c)
	s.byID[callID] = c
	return c
}

// lookup returns the latest call with callID, or nil.
func (s *Simulator) lookup(callID string) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[callID]
}

// markEnded publishes that c ended.
func (s *Simulator) markEnded(c *call) {
	s.mu.Lock()
	s.ended = append(s.ended, c)
	close(s.endedCh)
	s.endedCh = make(chan struct{})
	s.mu.Unlock()
}

func (s *Simulator) handleAck(req *sip.Request, tx sip.ServerTransaction) {
	if err := s.dialogs.ReadAck(req, tx); err != nil {
		s.log.Debug("ACK outside a known dialog", "call_id", callIDOf(req), "error", err)
	}
}

func (s *Simulator) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	callID := callIDOf(req)
	if c := s.lookup(callID); c != nil {
		c.byeFrom(hungUpByCaller, time.Now())
	}
	if err := s.dialogs.ReadBye(req, tx); err != nil {
		s.log.Debug("BYE outside a known dialog", "call_id", callID, "error", err)
		res := sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil)
		if err := tx.Respond(res); err != nil {
			s.log.Debug("respond 481 to BYE", "call_id", callID, "error", err)
		}
	}
}

// handleStrayCancel gets only the CANCELs that match no INVITE transaction:
// sipgo answers the others itself (200 to the CANCEL, 487 to the INVITE).
func (s *Simulator) handleStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.cancels.Add(1)
	res := sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil)
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond 481 to CANCEL", "call_id", callIDOf(req), "error", err)
	}
}

func (s *Simulator) handleOptions(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond to OPTIONS", "error", err)
	}
}

func callIDOf(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}
