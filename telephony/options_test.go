package telephony_test

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/telephony/sim"
)

func TestOptionsProbe(t *testing.T) {
	s, err := sim.Start(context.Background(), sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := telephony.NewDialer(telephony.Config{Listen: "127.0.0.1:0", RTPPortMin: 30000, RTPPortMax: 30100})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := telephony.Trunk{Name: "sim", URI: sip.Uri{Host: s.Addr().Addr().String(), Port: int(s.Addr().Port())}, Transport: "udp"}
	if code, err := d.Options(ctx, up); err != nil || code != 200 {
		t.Fatalf("OPTIONS to the simulator: %d, %v", code, err)
	}
	// Nothing listens on a freshly closed port: no response, an error.
	s.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if code, err := d.Options(ctx2, up); err == nil {
		t.Fatalf("OPTIONS to a closed port answered %d", code)
	}
}
