package telephony

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
)

// ClientTLS builds the TLS configuration for the trunks whose transport is
// tls. Each trunk has its own CA bundle (TLSCA; empty: the system roots) and
// may override the name its certificate must carry (TLSServerName). sipgo
// holds one TLS configuration per user agent, so the certificate is checked
// here, per connection, against the trunk it was dialled for: the SNI name
// names the trunk. A trunk addressed by IP sends no SNI; its certificate must
// verify against one of the IP-addressed trunks' settings.
func ClientTLS(trunks []Trunk) (*tls.Config, error) {
	type check struct {
		roots *x509.CertPool
		name  string
	}
	byHost := map[string]check{}
	var byIP []check
	for _, t := range trunks {
		if t.Transport != "tls" {
			continue
		}
		c := check{name: t.TLSServerName}
		if c.name == "" {
			c.name = t.URI.Host
		}
		if t.TLSCA != "" {
			pem, err := os.ReadFile(t.TLSCA)
			if err != nil {
				return nil, fmt.Errorf("trunk %s: tls_ca: %w", t.Name, err)
			}
			c.roots = x509.NewCertPool()
			if !c.roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("trunk %s: tls_ca %s holds no PEM certificate", t.Name, t.TLSCA)
			}
		}
		if _, err := netip.ParseAddr(t.URI.Host); err == nil {
			byIP = append(byIP, c)
		} else {
			byHost[t.URI.Host] = c
		}
	}
	if len(byHost) == 0 && len(byIP) == 0 {
		return nil, nil
	}
	verify := func(cs tls.ConnectionState, c check) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the trunk sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: c.roots, DNSName: c.name, Intermediates: inter})
		return err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification happens in VerifyConnection, per trunk.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if c, ok := byHost[cs.ServerName]; ok {
				return verify(cs, c)
			}
			var errs []error
			for _, c := range byIP {
				err := verify(cs, c)
				if err == nil {
					return nil
				}
				errs = append(errs, err)
			}
			if len(errs) == 0 {
				return fmt.Errorf("no tls trunk is configured for %q", cs.ServerName)
			}
			return fmt.Errorf("trunk certificate: %w (check the trunk's tls_ca and tls_server_name)", errors.Join(errs...))
		},
	}, nil
}
