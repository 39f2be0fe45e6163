// Package netguard keeps outbound HTTP to user-given URLs (status callbacks,
// recordings fetched by URL) away from the inside network.
//
// Two checks, both needed:
//
//   - CheckURL, when a URL is accepted (at enqueue, at config load): only
//     http and https, no userinfo, the host on an optional allow list
//     (exact names and "*.domain" suffixes), and an IP-literal host must be
//     a public address.
//   - Dialer / Transport, when a connection is made: the dialer's Control
//     function sees the resolved IP of every socket, so a name that resolves
//     (or is rebound) to 127.0.0.1, 10.0.0.0/8, 169.254.169.254 ... is refused
//     with ErrAddressNotAllowed before a single byte is sent.
//
// Both are off for non-public addresses only when the operator opts in
// (allowPrivate), for deployments whose receivers are internal.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrAddressNotAllowed is the cause of a refused connection or URL: the
// address is not a public unicast address.
var ErrAddressNotAllowed = errors.New("address not allowed")

// ErrHostNotAllowed is the cause of a URL whose host is not on the allow list.
var ErrHostNotAllowed = errors.New("host not allowed")

// nonPublic are ranges that are not reachable on the public Internet, or that
// embed or translate to such addresses, beyond what netip's methods cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared space (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), ::, ::1
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (Teredo, ORCHID, ...)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("3fff::/20"),       // documentation
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	netip.MustParsePrefix("5f00::/16"),       // SRv6 SIDs
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (SIIT)
}

var (
	sixToFour = netip.MustParsePrefix("2002::/16")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
)

// CheckAddr returns nil for a public unicast address and an error wrapping
// ErrAddressNotAllowed for anything else: loopback, private (RFC 1918,
// fc00::/7), CGNAT (100.64/10), link-local (169.254/16, fe80::/10),
// multicast, unspecified, documentation, reserved and the like. An
// IPv4-mapped IPv6 address is judged as the IPv4 address it maps; 6to4 and
// NAT64 addresses by the IPv4 address they embed.
func CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	if !public(ip) {
		return fmt.Errorf("%w: %s is not a public address", ErrAddressNotAllowed, ip)
	}
	return nil
}

func public(ip netip.Addr) bool {
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || !ip.IsGlobalUnicast() {
		return false
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case sixToFour.Contains(ip):
			return public(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		case nat64.Contains(ip):
			return public(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		}
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Control is a net.Dialer Control function that refuses every socket whose
// remote address is not public (CheckAddr). It runs after name resolution,
// once per address tried, so DNS rebinding cannot get around it.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrAddressNotAllowed, address)
	}
	return CheckAddr(ap.Addr())
}

// Dialer returns a dialer with d's settings that, unless allowPrivate,
// refuses non-public addresses at connect time (Control).
func Dialer(d net.Dialer, allowPrivate bool) *net.Dialer {
	if !allowPrivate {
		d.Control, d.ControlContext = nil, func(_ context.Context, network, address string, c syscall.RawConn) error {
			return Control(network, address, c)
		}
	}
	return &d
}

// Transport returns a clone of http.DefaultTransport whose connections go
// through Dialer. Unless allowPrivate it uses no proxy from the environment:
// the check must see the receiver's address, not a proxy's.
func Transport(allowPrivate bool) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = Dialer(net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}, allowPrivate).DialContext
	if !allowPrivate {
		tr.Proxy = nil
	}
	return tr
}

// CheckURL reports whether raw is fit for outbound requests: an absolute
// http or https URL without userinfo, whose host is on hosts when hosts is
// not empty (exact names, or "*.domain" for any name under domain), and
// whose host, if it is an IP literal, is a public address unless
// allowPrivate. Names are not resolved here: Dialer checks the resolved
// addresses at connect time. Errors say what is wrong and how to fix it;
// those of a refused address or host wrap ErrAddressNotAllowed or
// ErrHostNotAllowed.
func CheckURL(raw string, allowPrivate bool, hosts []string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return errors.New("not an absolute URL: use http://host/path or https://host/path")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: use http or https", u.Scheme)
	}
	if u.User != nil {
		return errors.New("credentials in the URL (user:password@) are not allowed: authenticate the callback by its signature")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("no host: use http://host/path or https://host/path")
	}
	if len(hosts) > 0 && !HostAllowed(host, hosts) {
		return fmt.Errorf("%w: host %q is not in this app's callback_hosts (%s): use a listed host, or ask the operator to add it",
			ErrHostNotAllowed, host, strings.Join(hosts, ", "))
	}
	if allowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := CheckAddr(ip); err != nil {
			return fmt.Errorf("%w: use a public host name or address (internal addresses are refused unless the operator sets allow_private_hosts)", err)
		}
	} else if h := strings.TrimSuffix(strings.ToLower(host), "."); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%w: %s is loopback: use a public host name", ErrAddressNotAllowed, host)
	}
	return nil
}

// HostAllowed reports whether host matches one of patterns: an exact name
// (case-insensitive, a trailing dot ignored) or "*.domain", which matches
// every name under domain but not domain itself.
func HostAllowed(host string, patterns []string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	for _, p := range patterns {
		p = strings.TrimSuffix(strings.ToLower(p), ".")
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(h, "."+suffix) {
				return true
			}
		} else if h == p {
			return true
		}
	}
	return false
}

// CheckHostPattern reports whether p is a valid callback_hosts entry: a
// host name or IP address, or "*." and a domain of at least two labels.
func CheckHostPattern(p string) error {
	name := p
	if s, ok := strings.CutPrefix(p, "*."); ok {
		name = s
		if !strings.Contains(strings.TrimSuffix(s, "."), ".") {
			return fmt.Errorf("%q: a wildcard needs a domain of at least two labels, e.g. *.example.com", p)
		}
	}
	if _, err := netip.ParseAddr(name); err == nil && name == p {
		return nil
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%q: use a host name such as hooks.example.com, or *.example.com", p)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q: use a host name such as hooks.example.com, or *.example.com (no scheme, port or path)", p)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q: use a host name such as hooks.example.com, or *.example.com (no scheme, port or path)", p)
			}
		}
	}
	return nil
}

// Describe returns a short description of a failed request that is safe to
// show to whoever gave the URL: "refused: address not allowed", "refused:
// host not allowed", "timed out" or "connection failed". It never names an
// address or repeats the dial error (log err itself for the operator).
func Describe(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, ErrAddressNotAllowed):
		return "refused: address not allowed"
	case errors.Is(err, ErrHostNotAllowed):
		return "refused: host not allowed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return "connection failed"
}
