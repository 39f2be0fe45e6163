// Package telephony places outbound calls to carrier SIP trunks: SIP
// signalling with sipgo, SDP with pion/sdp, and RTP media paced from one
// shared scheduler. The carrier simulator lives in telephony/sim.
package telephony

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/tts"
)

// Config configures a Dialer.
type Config struct {
	// Listen is the UDP host:port the user agent binds ("127.0.0.1:0" for any port).
	Listen string
	// PublicHost is the address put in Contact and SDP; empty means the bound address.
	PublicHost string
	UserAgent  string
	// TLS is the client TLS configuration for tls trunks (see ClientTLS).
	TLS *tls.Config
	// RTPPortMin and RTPPortMax bound the media ports.
	RTPPortMin, RTPPortMax int
	// RTPAcceptFrom says where the callee's RTP may come from:
	// AcceptFromAnswer (the answer's c= address; "" means this) or
	// AcceptFromSignalling (the address the trunk's 200 OK came from).
	RTPAcceptFrom string
	Logger        *slog.Logger
}

// Trunk is where a call is sent.
type Trunk struct {
	Name string
	// URI is the trunk's SIP URI, e.g. sip:carrier.example.com:5060.
	URI       sip.Uri
	Transport string
	Username  string
	Password  string
	CallerID  string
	Codecs    []tts.Codec
	// TLSCA and TLSServerName check a tls trunk's certificate (ClientTLS).
	TLSCA, TLSServerName string
	// FromDomain is the host of the From URI (empty: the trunk's host).
	FromDomain string
	// AuthUsername is the digest user when it differs from Username.
	AuthUsername string
	// Realm, when set, is the only digest realm answered; a challenge for
	// another realm fails the call instead of sending the password there.
	Realm string
}

// Dialer is a SIP user agent that places outbound calls. One Dialer serves
// every call of a worker process.
type Dialer struct {
	ua      *sipgo.UserAgent
	client  *sipgo.Client
	server  *sipgo.Server
	dialogs *sipgo.DialogClientCache // UDP, from the listening socket
	// streamDialogs and streamClient serve tcp and tls trunks.
	streamDialogs *sipgo.DialogClientCache
	streamClient  *sipgo.Client
	contact       sip.ContactHeader
	conn          net.PacketConn
	addr          netip.AddrPort // bound SIP address
	public        string         // host in Contact
	sdpIP         netip.Addr     // address in the SDP c= line
	ports         *portPool
	acceptFrom    string // AcceptFromAnswer or AcceptFromSignalling
	pacer         *pacer
	log           *slog.Logger
	tls           bool // a TLS configuration was given: tls trunks work

	mu    sync.Mutex
	calls map[string]*call // by Call-ID, for requests from the carrier

	serveDone chan struct{}
	tcpLn     net.Listener // SIP over TCP, at the UDP socket's port
	tcpDone   chan struct{}
}

// NewDialer binds the SIP socket and starts serving requests from carriers
// (BYE, OPTIONS).
func NewDialer(cfg Config) (*Dialer, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	acceptFrom := orDefault(cfg.RTPAcceptFrom, AcceptFromAnswer)
	if acceptFrom != AcceptFromAnswer && acceptFrom != AcceptFromSignalling {
		return nil, fmt.Errorf("rtp accept_from %q: use %q or %q", cfg.RTPAcceptFrom, AcceptFromAnswer, AcceptFromSignalling)
	}
	ap, err := netip.ParseAddrPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("sip listen %q: %w", cfg.Listen, err)
	}
	conn, tcpLn, err := listenSIP(ap)
	if err != nil {
		return nil, fmt.Errorf("sip listen %s: %w (is another worker using this port? set sip.listen)", cfg.Listen, err)
	}
	bound := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	bound = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
	public := cfg.PublicHost
	if public == "" {
		public = bound.Addr().String()
		if bound.Addr().IsUnspecified() {
			public = outboundIP().String()
		}
	}
	sdpIP, err := advertisedIP(public)
	if err != nil {
		_ = conn.Close()
		_ = tcpLn.Close()
		return nil, err
	}
	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent(orDefault(cfg.UserAgent, "vms")), sipgo.WithUserAgentHostname(public)}
	if cfg.TLS != nil {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(cfg.TLS))
	}
	ua, err := sipgo.NewUA(uaOpts...)
	if err != nil {
		_ = conn.Close()
		_ = tcpLn.Close()
		return nil, err
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(bound.String()),
		sipgo.WithClientHostname(public), sipgo.WithClientPort(int(bound.Port())), sipgo.WithClientLogger(log))
	if err != nil {
		_ = ua.Close()
		_ = conn.Close()
		_ = tcpLn.Close()
		return nil, err
	}
	// TCP and TLS requests open connections of their own: this client is
	// not pinned to the UDP socket.
	streamClient, err := sipgo.NewClient(ua, sipgo.WithClientHostname(public), sipgo.WithClientLogger(log))
	if err != nil {
		_ = ua.Close()
		_ = conn.Close()
		_ = tcpLn.Close()
		return nil, err
	}
	server, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		_ = ua.Close()
		_ = conn.Close()
		_ = tcpLn.Close()
		return nil, err
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "vms", Host: public, Port: int(bound.Port())}}
	tcpContact := contact
	tcpContact.Address.UriParams = sip.NewParams()
	tcpContact.Address.UriParams.Add("transport", "tcp")
	d := &Dialer{
		ua: ua, client: client, server: server, conn: conn, tcpLn: tcpLn, addr: bound, public: public,
		dialogs:       sipgo.NewDialogClientCache(client, contact),
		streamDialogs: sipgo.NewDialogClientCache(streamClient, tcpContact),
		streamClient:  streamClient,
		contact:       contact,
		sdpIP:         sdpIP,
		ports:         newPortPool(bound.Addr(), cfg.RTPPortMin, cfg.RTPPortMax),
		acceptFrom:    acceptFrom,
		pacer:         newPacer(tts.FrameDuration),
		log:           log,
		tls:           cfg.TLS != nil,
		calls:         map[string]*call{},
		serveDone:     make(chan struct{}),
		tcpDone:       make(chan struct{}),
	}
	server.OnBye(d.onBye)
	server.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	server.OnInvite(d.onSessionRefresh)
	server.OnUpdate(d.onSessionRefresh)
	server.OnInfo(d.onInfo)
	server.OnAck(func(*sip.Request, sip.ServerTransaction) {}) // ACKs of answered re-INVITEs
	go func() {
		defer close(d.serveDone)
		_ = server.ServeUDP(conn)
	}()
	go func() {
		defer close(d.tcpDone)
		_ = server.ServeTCP(tcpLn)
	}()
	if err := WaitServing(ua, d.serveDone); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("sip listen %s: %w", bound, err)
	}
	return d, nil
}

// Addr is the bound SIP address.
func (d *Dialer) Addr() netip.AddrPort { return d.addr }

// ActiveCalls is how many calls are in progress.
func (d *Dialer) ActiveCalls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

// RTPPortsInUse is how many RTP sockets are open (zero when no call is up).
func (d *Dialer) RTPPortsInUse() int { return d.ports.used() }

// Close stops the user agent. Calls still up are ended without BYE, so
// drain calls first.
func (d *Dialer) Close() error {
	d.pacer.close()
	err := d.ua.Close()
	_ = d.conn.Close()
	_ = d.tcpLn.Close()
	<-d.serveDone
	<-d.tcpDone
	return err
}

// In-dialog requests from the carrier (BYE, INFO, re-INVITE, UPDATE) must
// name the dialog (RFC 3261 §12.2.2): its Call-ID, our tag in To and the
// carrier's tag (of its 200 OK) in From. Any other gets 481 and changes
// nothing: a Call-ID alone, which travels in the clear, must not end a call
// or press its keys.

// onBye handles the carrier hanging up.
func (d *Dialer) onBye(req *sip.Request, tx sip.ServerTransaction) {
	at := time.Now()
	c := d.lookup(req)
	if c == nil {
		respond481(req, tx)
		return
	}
	c.remoteBye(at)
	if err := d.dialogs.ReadBye(req, tx); err == nil {
		return
	}
	if err := d.streamDialogs.ReadBye(req, tx); err != nil {
		// The dialog matched ours; sipgo has already let go of it.
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	}
}

func respond481(req *sip.Request, tx sip.ServerTransaction) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
}

// onSessionRefresh answers an in-dialog re-INVITE or UPDATE with our
// current SDP: vms never changes its media mid-call, and some carriers drop
// calls whose refreshes go unanswered. vms takes no inbound calls.
func (d *Dialer) onSessionRefresh(req *sip.Request, tx sip.ServerTransaction) {
	c := d.lookup(req)
	if c == nil {
		if to := req.To(); to != nil && req.Method == sip.INVITE {
			if _, inDialog := to.Params.Get("tag"); !inDialog {
				_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusForbidden, "vms places outbound calls only", nil))
				return
			}
		}
		respond481(req, tx)
		return
	}
	res := sip.NewSDPResponseFromRequest(req, c.sdp)
	res.AppendHeader(&d.contact)
	_ = tx.Respond(res)
}

// onInfo takes DTMF sent as SIP INFO (application/dtmf-relay or
// application/dtmf).
func (d *Dialer) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := d.lookup(req)
	if c == nil {
		respond481(req, tx)
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	if key, ok := infoKey(ct, req.Body()); ok {
		c.keys.offer(queue.KeyPress{Key: key, At: time.Now(), Via: "info"})
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
}

// lookup finds the call a request from the carrier belongs to: the Call-ID
// and both tags must match an answered call's dialog.
func (d *Dialer) lookup(req *sip.Request) *call {
	if req.CallID() == nil || req.To() == nil || req.From() == nil {
		return nil
	}
	d.mu.Lock()
	c := d.calls[req.CallID().Value()]
	d.mu.Unlock()
	if c == nil || !c.dialog.matches(req) {
		return nil
	}
	return c
}

// dialogTags are the tags of an answered call's dialog, for matching the
// carrier's in-dialog requests.
type dialogTags struct {
	mu            sync.Mutex
	local, remote string // our From tag; the To tag of the carrier's 200 OK
}

// confirm records the dialog of an answered INVITE.
func (t *dialogTags) confirm(invite *sip.Request, ok *sip.Response) {
	if invite == nil || ok == nil || invite.From() == nil || ok.To() == nil {
		return
	}
	local, _ := invite.From().Params.Get("tag")
	remote, _ := ok.To().Params.Get("tag")
	t.mu.Lock()
	t.local, t.remote = local, remote
	t.mu.Unlock()
}

// matches reports whether a request from the carrier carries both tags: ours
// in To, the carrier's in From. Before the answer nothing matches.
func (t *dialogTags) matches(req *sip.Request) bool {
	to, _ := req.To().Params.Get("tag")
	from, _ := req.From().Params.Get("tag")
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.local != "" && t.remote != "" && to == t.local && from == t.remote
}

func (d *Dialer) track(callID string, c *call) {
	d.mu.Lock()
	d.calls[callID] = c
	d.mu.Unlock()
}

func (d *Dialer) untrack(callID string) {
	d.mu.Lock()
	delete(d.calls, callID)
	d.mu.Unlock()
}

// outboundIP is the first global unicast address of this host; used when
// listening on 0.0.0.0 without sip.public_host.
func outboundIP() netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() && ip.IsGlobalUnicast() {
				return ip.Unmap()
			}
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}

// listenSIP binds SIP over UDP and over TCP at the same address. Carriers on
// tcp and tls trunks that do not reuse our connection send in-dialog
// requests (BYE) to the Contact, so TCP listens at the UDP socket's port.
// (Inbound TLS would need a certificate of ours: tls carriers reuse the
// connection, as RFC 5923 has them do.) With port 0 the kernel picks the UDP
// port; if TCP has it taken, another is tried.
func listenSIP(ap netip.AddrPort) (net.PacketConn, net.Listener, error) {
	network := "4"
	if ap.Addr().Is6() {
		network = "6"
	}
	for try := 0; ; try++ {
		conn, err := net.ListenPacket("udp"+network, ap.String())
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp"+network, conn.LocalAddr().String())
		if err == nil {
			return conn, ln, nil
		}
		_ = conn.Close()
		if ap.Port() != 0 || try == 10 {
			return nil, nil, fmt.Errorf("tcp: %w", err)
		}
	}
}

// advertisedIP is the IP address for SDP: public_host itself, or what it
// resolves to.
func advertisedIP(host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("sip.public_host %q does not resolve (%v): set it to this worker's public IP", host, err)
	}
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			return netip.AddrFrom4([4]byte(v4)), nil
		}
	}
	a, _ := netip.AddrFromSlice(ips[0])
	return a, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

var errNoAudio = errors.New("no audio for any codec of the trunk")

// dialogsFor returns the dialog cache for the trunk's transport.
func (d *Dialer) dialogsFor(t Trunk) *sipgo.DialogClientCache {
	if t.Transport == "tcp" || t.Transport == "tls" {
		return d.streamDialogs
	}
	return d.dialogs
}
