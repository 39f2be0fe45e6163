package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vms-project/vms/internal/testutil"
)

func TestCheckAddr(t *testing.T) {
	refused := []string{
		"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"100.64.0.1", "100.127.255.254", "169.254.169.254", "169.254.0.1", "0.0.0.0", "0.1.2.3",
		"224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1",
		"::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0", "ff02::1", "ff05::2",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
		"2002:7f00:1::1", "2002:a00:1::1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2001:db8::1",
		"2001::1", "fec0::1",
	}
	for _, s := range refused {
		if err := CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, ErrAddressNotAllowed) {
			t.Errorf("CheckAddr(%s) = %v, want refused", s, err)
		}
	}
	allowed := []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.1", "172.32.0.1",
		"::ffff:8.8.8.8", "2606:4700:4700::1111", "2002:808:808::1", "64:ff9b::808:808"}
	for _, s := range allowed {
		if err := CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want allowed", s, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	cases := []struct {
		url     string
		private bool
		hosts   []string
		want    string // "" for accepted, else a part of the error
	}{
		{"https://hooks.example.com/vms", false, nil, ""},
		{"http://93.184.216.34:8080/cb", false, nil, ""},
		{"https://[2606:4700:4700::1111]/cb", false, nil, ""},
		{"http://127.0.0.1:6379/", false, nil, "not allowed"},
		{"http://[::1]/", false, nil, "not allowed"},
		{"http://[::ffff:127.0.0.1]/", false, nil, "not allowed"},
		{"http://169.254.169.254/latest/meta-data/", false, nil, "not allowed"},
		{"http://10.1.2.3/", false, nil, "not allowed"},
		{"http://localhost:8080/", false, nil, "not allowed"},
		{"http://LOCALHOST./", false, nil, "not allowed"},
		{"http://a.localhost/", false, nil, "not allowed"},
		{"http://127.0.0.1:9000/cb", true, nil, ""},
		{"http://localhost:9000/cb", true, nil, ""},
		{"ftp://example.com/x", false, nil, "scheme"},
		{"gopher://example.com/", true, nil, "scheme"},
		{"file:///etc/passwd", true, nil, "scheme"},
		{"https://user:pw@example.com/", false, nil, "credentials"},
		{"https://user@example.com/", true, nil, "credentials"},
		{"/relative", false, nil, "absolute"},
		{"https:///nohost", false, nil, "no host"},
		{"http://%zz/", false, nil, "absolute"},
		{"https://a.hooks.example.com/x", false, []string{"*.hooks.example.com"}, ""},
		{"https://hooks.example.com/x", false, []string{"*.hooks.example.com"}, "callback_hosts"},
		{"https://evilhooks.example.com/x", false, []string{"*.hooks.example.com"}, "callback_hosts"},
		{"https://Shop.Example.COM./x", false, []string{"shop.example.com"}, ""},
		{"https://other.example.com/x", false, []string{"shop.example.com"}, "callback_hosts"},
		{"http://127.0.0.1/x", false, []string{"127.0.0.1"}, "not allowed"}, // listed, but still not public
		{"http://127.0.0.1/x", true, []string{"127.0.0.1"}, ""},
	}
	for _, c := range cases {
		err := CheckURL(c.url, c.private, c.hosts)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckURL(%q, private=%v, %v) = %v, want %q", c.url, c.private, c.hosts, err, c.want)
		}
	}
}

func TestCheckHostPattern(t *testing.T) {
	for _, ok := range []string{"hooks.example.com", "*.example.com", "localhost", "10.0.0.1", "::1", "a_b.example.com"} {
		if err := CheckHostPattern(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "*.com", "https://x.com", "x.com:443", "x.com/path", "-a.com", "a..com", "*.*.com"} {
		if err := CheckHostPattern(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDialerRefusesNameResolvingInside(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	res := testutil.FakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ips, err := res.LookupHost(ctx, "hooks.rebind.example"); err != nil || len(ips) != 1 || ips[0] != "127.0.0.1" {
		t.Fatalf("fake DNS: %v %v", ips, err)
	}

	get := func(allowPrivate bool, host string) (*http.Response, error) {
		tr := Transport(allowPrivate)
		tr.DialContext = Dialer(net.Dialer{Resolver: res, Timeout: 5 * time.Second}, allowPrivate).DialContext
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		return c.Get("http://" + net.JoinHostPort(host, port) + "/")
	}
	for _, host := range []string{"hooks.rebind.example", "localhost", "127.0.0.1"} {
		resp, err := get(false, host)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: connected to the inside (HTTP %d)", host, resp.StatusCode)
		}
		if !errors.Is(err, ErrAddressNotAllowed) || Describe(err) != "refused: address not allowed" {
			t.Errorf("%s: %v (%q), want refused: address not allowed", host, err, Describe(err))
		}
	}
	resp, err := get(true, "hooks.rebind.example")
	if err != nil {
		t.Fatalf("with allowPrivate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Errorf("with allowPrivate: HTTP %d", resp.StatusCode)
	}
}

func TestDescribe(t *testing.T) {
	c := &http.Client{Timeout: 200 * time.Millisecond, Transport: Transport(true)}
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	_, err := c.Get(srv.URL)
	if got := Describe(err); got != "timed out" {
		t.Errorf("slow server: %q (%v)", got, err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err = c.Get("http://" + addr + "/")
	if got := Describe(err); got != "connection failed" || strings.Contains(got, "127.0.0.1") {
		t.Errorf("closed port: %q (%v)", got, err)
	}
}
