package telephony

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// portPool hands out UDP sockets for RTP from a configured port range. A
// port is in use from acquire until release; ports other processes hold
// are skipped.
type portPool struct {
	ip       netip.Addr
	min, max int

	mu    sync.Mutex
	next  int
	inUse map[int]bool
}

func newPortPool(ip netip.Addr, min, max int) *portPool {
	if min%2 == 1 {
		min++ // RTP uses even ports (RFC 3550 §11)
	}
	return &portPool{ip: ip, min: min, max: max, next: min, inUse: map[int]bool{}}
}

var errNoPorts = errors.New("no free RTP port")

// acquire binds the next free even port.
func (p *portPool) acquire() (*net.UDPConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := (p.max-p.min)/2 + 1
	for i := 0; i < n; i++ {
		port := p.next
		p.next += 2
		if p.next > p.max {
			p.next = p.min
		}
		if p.inUse[port] {
			continue
		}
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.ip, uint16(port))))
		if err != nil {
			continue // taken by another process
		}
		p.inUse[port] = true
		return conn, nil
	}
	return nil, fmt.Errorf("%w in rtp.port_min..port_max %d-%d: widen the range or lower worker.concurrency", errNoPorts, p.min, p.max)
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
