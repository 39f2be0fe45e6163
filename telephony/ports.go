package telephony

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
)

// portPool hands out UDP sockets for RTP from a configured port range. A
// port is in use from acquire until release; ports other processes hold
// are skipped. Ports are picked at random (RTP bleed, CVE-2017-14099: a
// port handed out in sequence is one an attacker can guess and spray first).
type portPool struct {
	ip       netip.Addr
	min, max int

	mu    sync.Mutex
	inUse map[int]bool
}

func newPortPool(ip netip.Addr, min, max int) *portPool {
	if min%2 == 1 {
		min++ // RTP uses even ports (RFC 3550 §11)
	}
	return &portPool{ip: ip, min: min, max: max, inUse: map[int]bool{}}
}

var errNoPorts = errors.New("no free RTP port")

// randomTries is how many random ports acquire tries before it walks the
// range (from a random place) for a free one.
const randomTries = 16

// acquire binds a random free even port of the range.
func (p *portPool) acquire() (*net.UDPConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := (p.max-p.min)/2 + 1
	if n > 0 {
		for i := 0; i < randomTries && len(p.inUse) < n; i++ {
			if conn := p.bind(p.min + 2*rand.IntN(n)); conn != nil {
				return conn, nil
			}
		}
		start := rand.IntN(n)
		for i := 0; i < n; i++ {
			if conn := p.bind(p.min + 2*((start+i)%n)); conn != nil {
				return conn, nil
			}
		}
	}
	return nil, fmt.Errorf("%w in rtp.port_min..port_max %d-%d: widen the range or lower worker.concurrency", errNoPorts, p.min, p.max)
}

// bind takes port unless a call of ours or another process holds it.
// p.mu is held.
func (p *portPool) bind(port int) *net.UDPConn {
	if p.inUse[port] {
		return nil
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.ip, uint16(port))))
	if err != nil {
		return nil // taken by another process
	}
	p.inUse[port] = true
	return conn
}

// release closes the socket and frees its port.
func (p *portPool) release(conn *net.UDPConn) {
	port := conn.LocalAddr().(*net.UDPAddr).Port
	_ = conn.Close()
	p.mu.Lock()
	delete(p.inUse, port)
	p.mu.Unlock()
}

// used returns how many ports are held.
func (p *portPool) used() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inUse)
}
