package telephony

import (
	"context"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Options sends an out-of-dialog OPTIONS to the trunk and returns the
// response code. Any response, even 401/403/404, proves the trunk is up;
// an error (no response, transport failure) means it is not.
func (d *Dialer) Options(ctx context.Context, t Trunk) (int, error) {
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: t.URI.Host, Port: t.URI.Port})
	req.SetTransport(transportOf(t))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "vms", Host: d.public}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	client := d.client
	if t.Transport == "tcp" || t.Transport == "tls" {
		client = d.streamClient
	}
	res, err := client.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("trunk %s: OPTIONS: %w", t.Name, err)
	}
	return res.StatusCode, nil
}

// transportOf is the SIP transport name sipgo expects.
func transportOf(t Trunk) string {
	if t.Transport == "" {
		return "UDP"
	}
	return strings.ToUpper(t.Transport)
}
