package telephony_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vms-project/vms/queue"
	. "github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/telephony/sim"
	"github.com/vms-project/vms/tts"
)

// testPKI makes a CA and a server certificate for carrier.test, and writes
// the CA to a PEM file.
func testPKI(t *testing.T) (server tls.Certificate, caFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test carrier CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "carrier.test"},
		DNSNames: []string{"carrier.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}

func TestTLSTrunk(t *testing.T) {
	cert, caFile := testPKI(t)
	_, otherCA := testPKI(t)
	s, err := sim.Start(context.Background(), sim.Config{RequireTLS: true,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	uri := sip.Uri{Host: s.TLSAddr().Addr().String(), Port: int(s.TLSAddr().Port())}
	good := Trunk{Name: "tls-ok", URI: uri, Transport: "tls", TLSCA: caFile, TLSServerName: "carrier.test", Codecs: []tts.Codec{tts.PCMU}}
	tlsConf, err := ClientTLS([]Trunk{good})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDialer(Config{Listen: "127.0.0.1:0", RTPPortMin: 31000, RTPPortMax: 39999, TLS: tlsConf})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	audio := map[tts.Codec]*tts.Audio{tts.PCMU: tone(tts.PCMU, time.Second)}
	call := func(tr Trunk) Result {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return d.Call(ctx, CallRequest{MessageID: "tls", To: "+8613800138000", Trunk: tr, Audio: audio,
			RingTimeout: 3 * time.Second, MaxDuration: 10 * time.Second})
	}
	res := call(good)
	if res.Status != queue.StatusCompleted || !res.PlayedToEnd {
		t.Fatalf("call over TLS: %s %d %s", res.Status, res.SIPCode, res.Reason)
	}

	// The same carrier over UDP refuses: it requires TLS.
	udp := Trunk{Name: "udp", URI: sip.Uri{Host: s.Addr().Addr().String(), Port: int(s.Addr().Port())}, Transport: "udp", Codecs: []tts.Codec{tts.PCMU}}
	if res := call(udp); res.SIPCode != 403 || res.Status != queue.StatusRejected {
		t.Fatalf("UDP to a TLS-only carrier: %s %d", res.Status, res.SIPCode)
	}

	// A certificate from a CA we do not trust fails the handshake: no call.
	badConf, err := ClientTLS([]Trunk{{Name: "tls-bad", URI: uri, Transport: "tls", TLSCA: otherCA, TLSServerName: "carrier.test"}})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := NewDialer(Config{Listen: "127.0.0.1:0", RTPPortMin: 31000, RTPPortMax: 39999, TLS: badConf})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res = d2.Call(ctx, CallRequest{MessageID: "tls-bad", To: "+8613800138000", Trunk: good, Audio: audio, RingTimeout: 3 * time.Second, MaxDuration: 10 * time.Second})
	if res.Status != queue.StatusUnreachable || !strings.Contains(res.Reason, "certificate") {
		t.Fatalf("untrusted certificate: %s %q", res.Status, res.Reason)
	}
}

func TestTCPTrunk(t *testing.T) {
	s, err := sim.Start(context.Background(), sim.Config{TCP: true,
		Scenarios: map[string]sim.Scenario{"+8613800138011": {Kind: sim.KindHangup, After: 500 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := NewDialer(Config{Listen: "127.0.0.1:0", RTPPortMin: 31000, RTPPortMax: 39999})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tr := Trunk{Name: "tcp", URI: sip.Uri{Host: s.TCPAddr().Addr().String(), Port: int(s.TCPAddr().Port())}, Transport: "tcp", Codecs: []tts.Codec{tts.PCMA}}
	call := func(to string) Result {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return d.Call(ctx, CallRequest{MessageID: "tcp-" + to, To: to, Trunk: tr,
			Audio: map[tts.Codec]*tts.Audio{tts.PCMA: tone(tts.PCMA, time.Second)}, RingTimeout: 3 * time.Second, MaxDuration: 10 * time.Second})
	}
	// We hang up (BYE over TCP), and the callee hangs up (their BYE reaches us).
	if res := call("+8613800138000"); res.Status != queue.StatusCompleted || !res.PlayedToEnd || res.HungUpBy != "caller" || res.Codec != tts.PCMA {
		t.Fatalf("call over TCP: %+v", res)
	}
	if res := call("+8613800138011"); res.Status != queue.StatusCompleted || res.HungUpBy != "callee" || res.BillableMS > 900 {
		t.Fatalf("callee hangs up over TCP: %+v", res)
	}
	calls, err := s.WaitEnded(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.RTP.Packets == 0 || c.FinalCode != 200 {
			t.Fatalf("simulator: %+v", c)
		}
	}
}

func TestTCPTrunkRefusedConnection(t *testing.T) {
	// Nothing listens: a transport error, reported as unreachable at once.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	d, err := NewDialer(Config{Listen: "127.0.0.1:0", RTPPortMin: 31000, RTPPortMax: 39999})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now()
	res := d.Call(context.Background(), CallRequest{MessageID: "tcp", To: "+8613800138000",
		Trunk: Trunk{Name: "tcp", URI: sip.Uri{Host: "127.0.0.1", Port: addr.Port}, Transport: "tcp", Codecs: []tts.Codec{tts.PCMU}},
		Audio: map[tts.Codec]*tts.Audio{tts.PCMU: tone(tts.PCMU, time.Second)}, RingTimeout: 3 * time.Second, MaxDuration: 10 * time.Second})
	if res.Status != queue.StatusUnreachable || time.Since(start) > 3*time.Second {
		t.Fatalf("refused TCP: %s %q after %s", res.Status, res.Reason, time.Since(start))
	}
}
