package telephony

import (
	"errors"
	"time"

	"github.com/emiago/sipgo"
)

// WaitServing waits until sipgo has registered a UDP listening socket in
// its connection pool. Before that, a request sent from the listening
// address would try to bind the same port a second time and fail.
func WaitServing(ua *sipgo.UserAgent, serveDone <-chan struct{}) error {
	pool := ua.TransportLayer().Pool("udp")
	deadline := time.Now().Add(2 * time.Second)
	for pool.Size() == 0 {
		select {
		case <-serveDone:
			return errors.New("SIP transport stopped during start-up")
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("SIP transport not ready after 2s")
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}
