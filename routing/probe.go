package routing

import (
	"context"

	"github.com/vms-project/vms/telephony"
)

// Prober sends a SIP OPTIONS to a trunk and returns the final status code;
// *telephony.Dialer is one (from the worker's own SIP socket, the address
// the carrier knows).
type Prober interface {
	Options(ctx context.Context, t telephony.Trunk) (int, error)
}

// alive says whether a probe's answer shows the trunk is taking requests:
// any final response below 500 (a 401, 403 or 405 still proves the
// carrier's proxy is there); 5xx, 6xx or no response do not.
func alive(code int) bool { return code >= 200 && code < 500 }
