package callback

import (
	"net"
	"net/http"
	"time"

	"github.com/vms-project/vms/internal/netguard"
)

// SetResolver makes the service resolve callback hosts with r (a fake DNS
// in tests), keeping the connect-time address check. Call it before Start.
func SetResolver(s *Service, r *net.Resolver) {
	tr := s.sender.http.Transport.(*http.Transport)
	tr.DialContext = netguard.Dialer(net.Dialer{Resolver: r, Timeout: 30 * time.Second}, s.sender.allowPrivate).DialContext
}
