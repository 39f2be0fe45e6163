package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RedisProxy is a TCP proxy between vms processes and Redis that parses RESP
// (2 and 3) in both directions, so it knows which reply answers which
// command, and applies Rules to replies: a rule that fires closes the
// client's connection (and the one to Redis) instead of forwarding the
// reply. The command has run in Redis; the client just never hears back —
// a lost reply.
//
//	p := StartRedisProxy(t, redisAddr)
//	rule := &Rule{Command: "HSETNX"}            // the first HSETNX's reply is lost
//	p.Add(rule)
//	... later: rule.Fired() == 1
//
// Connections in pub/sub mode (after SUBSCRIBE) are passed through as they are.
type RedisProxy struct {
	Addr   string
	target string
	ln     net.Listener

	mu    sync.Mutex
	rules []*Rule
	conns map[net.Conn]struct{}
	log   []string
	wg    sync.WaitGroup
	// Trace, when set before traffic, is called with every command and the
	// type byte of its reply ('-' error...).
	Trace func(cmd []string, reply byte)
}

// Rule says which replies to drop.
type Rule struct {
	// Command is the command name, case-insensitive ("EVALSHA", "HSETNX"),
	// or several separated by commas ("EVALSHA,EVAL").
	Command string
	// Match, when set, must also accept the command's arguments (args[0]
	// is the command name), e.g. to pick scripts by their first key.
	Match func(args []string) bool
	// SkipErrors leaves error replies alone (e.g. NOSCRIPT before EVAL).
	SkipErrors bool
	// Times is how many replies to drop; 0 means 1.
	Times int

	fired atomic.Int32
	mu    sync.Mutex
	what  []string
}

// Fired is how many replies the rule has dropped.
func (r *Rule) Fired() int { return int(r.fired.Load()) }

// Dropped describes the commands whose replies the rule dropped.
func (r *Rule) Dropped() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.what...)
}

func (r *Rule) String() string {
	return fmt.Sprintf("drop reply to %s (fired %d of %d)", r.Command, r.Fired(), max(r.Times, 1))
}

// take reports whether the rule drops the reply to cmd (and counts it).
func (r *Rule) take(cmd []string, errReply bool) bool {
	if len(cmd) == 0 || !slices.ContainsFunc(strings.Split(r.Command, ","), func(c string) bool {
		return strings.EqualFold(strings.TrimSpace(c), cmd[0])
	}) {
		return false
	}
	if r.SkipErrors && errReply {
		return false
	}
	if r.Match != nil && !r.Match(cmd) {
		return false
	}
	limit := int32(max(r.Times, 1))
	for {
		n := r.fired.Load()
		if n >= limit {
			return false
		}
		if r.fired.CompareAndSwap(n, n+1) {
			r.mu.Lock()
			r.what = append(r.what, describe(cmd))
			r.mu.Unlock()
			return true
		}
	}
}

func describe(cmd []string) string {
	parts := make([]string, 0, 6)
	for i, a := range cmd {
		if i == 6 {
			parts = append(parts, "...")
			break
		}
		if len(a) > 48 {
			a = a[:48] + "…"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// StartRedisProxy listens on a free 127.0.0.1 port and forwards to target
// (host:port) until the test ends.
func StartRedisProxy(t testing.TB, target string, rules ...*Rule) *RedisProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &RedisProxy{Addr: ln.Addr().String(), target: target, ln: ln, rules: rules, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Add appends rules; they apply to replies read from now on.
func (p *RedisProxy) Add(rules ...*Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, rules...)
}

// Log lists what the proxy did (dropped replies), in order.
func (p *RedisProxy) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// Close stops accepting, closes every connection and waits for the goroutines.
func (p *RedisProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *RedisProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *RedisProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// proxyConn is one client connection and its connection to Redis.
type proxyConn struct {
	p              *RedisProxy
	client, server net.Conn

	mu      sync.Mutex
	pending [][]string // commands sent, replies not yet seen, in order
	pubsub  bool
}

func (p *RedisProxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	pc := &proxyConn{p: p, client: client, server: server}
	p.track(client, true)
	p.track(server, true)
	defer func() {
		_ = client.Close()
		_ = server.Close()
		p.track(client, false)
		p.track(server, false)
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pc.commands()
	}()
	pc.replies()
	_ = client.Close()
	_ = server.Close()
	<-done
}

// commands forwards the client's commands, noting each one.
func (pc *proxyConn) commands() {
	br := bufio.NewReader(pc.client)
	var raw bytes.Buffer
	for {
		raw.Reset()
		var args []string
		if _, err := readRESP(br, &raw, &args, 0); err != nil {
			_ = pc.server.Close()
			return
		}
		if len(args) > 0 {
			name := strings.ToUpper(args[0])
			pc.mu.Lock()
			if !pc.pubsub {
				pc.pending = append(pc.pending, args)
			}
			if name == "SUBSCRIBE" || name == "PSUBSCRIBE" || name == "SSUBSCRIBE" {
				pc.pubsub = true // replies no longer pair with commands
				pc.pending = nil
			}
			pc.mu.Unlock()
		}
		if _, err := pc.server.Write(raw.Bytes()); err != nil {
			return
		}
	}
}

// replies forwards Redis's replies unless a rule drops one.
func (pc *proxyConn) replies() {
	br := bufio.NewReader(pc.server)
	var raw bytes.Buffer
	for {
		raw.Reset()
		typ, err := readRESP(br, &raw, nil, 0)
		if err != nil {
			return
		}
		var cmd []string
		pc.mu.Lock()
		if typ != '>' && !pc.pubsub && len(pc.pending) > 0 {
			cmd = pc.pending[0]
			pc.pending = pc.pending[1:]
		}
		pc.mu.Unlock()
		if cmd != nil && pc.p.Trace != nil {
			pc.p.Trace(cmd, typ)
		}
		if cmd != nil && pc.drop(cmd, typ == '-' || typ == '!') {
			return // the caller closes both connections
		}
		if _, err := pc.client.Write(raw.Bytes()); err != nil {
			return
		}
	}
}

func (pc *proxyConn) drop(cmd []string, errReply bool) bool {
	pc.p.mu.Lock()
	rules := append([]*Rule(nil), pc.p.rules...)
	pc.p.mu.Unlock()
	for _, r := range rules {
		if r.take(cmd, errReply) {
			pc.p.mu.Lock()
			pc.p.log = append(pc.p.log, "dropped the reply to "+describe(cmd))
			pc.p.mu.Unlock()
			return true
		}
	}
	return false
}

// readRESP reads one RESP2/RESP3 value from br, appending its bytes to raw.
// With args, the elements of a top-level array of bulk strings (a command)
// are collected; an inline command is split on spaces. It returns the type
// byte of the value (of the value after an attribute).
func readRESP(br *bufio.Reader, raw *bytes.Buffer, args *[]string, depth int) (byte, error) {
	if depth > 64 {
		return 0, errors.New("resp: nested too deeply")
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	raw.Write(line)
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, fmt.Errorf("resp: bad line %q", line)
	}
	typ, body := line[0], string(line[1:len(line)-2])
	switch typ {
	case '+', '-', ':', ',', '#', '(', '_':
		return typ, nil
	case '$', '!', '=':
		n, err := strconv.Atoi(body)
		if err != nil {
			return 0, fmt.Errorf("resp: bad length %q", body)
		}
		if n < 0 {
			return typ, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return 0, err
		}
		raw.Write(buf)
		if args != nil && depth == 1 {
			*args = append(*args, string(buf[:n]))
		}
		return typ, nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil {
			return 0, fmt.Errorf("resp: bad count %q", body)
		}
		if typ == '%' || typ == '|' {
			n *= 2
		}
		var sub *[]string
		if depth == 0 && typ == '*' {
			sub = args
		}
		for i := 0; i < n; i++ {
			if _, err := readRESP(br, raw, sub, depth+1); err != nil {
				return 0, err
			}
		}
		if typ == '|' { // an attribute: the value it annotates follows
			return readRESP(br, raw, args, depth)
		}
		return typ, nil
	}
	if depth == 0 && args != nil { // inline command
		*args = strings.Fields(string(line[:len(line)-2]))
		return '+', nil
	}
	return 0, fmt.Errorf("resp: unknown type %q", typ)
}

// TestRedisProxy checks the proxy itself: replies pair with commands
// (pipelines, RESP3, pub/sub passthrough) and a rule loses exactly the reply
// it names while the command still runs.
func TestRedisProxy(t *testing.T) {
	t.Parallel()
	s := &Stack{T: t, Dir: t.TempDir()}
	r := startRedis(s)
	hsetnx := &Rule{Command: "HSETNX"}
	evalErr := &Rule{Command: "EVALSHA", SkipErrors: true}
	p := StartRedisProxy(t, r.Addr, hsetnx, evalErr)
	c := redis.NewClient(&redis.Options{Addr: p.Addr, MaxRetries: -1, Protocol: 3})
	defer c.Close()
	ctx := context.Background()

	pipe := c.Pipeline()
	pipe.Set(ctx, "a", "1", 0)
	pipe.HSet(ctx, "h", "f", "v")
	get := pipe.Get(ctx, "a")
	hgetall := pipe.HGetAll(ctx, "h")
	if _, err := pipe.Exec(ctx); err != nil || get.Val() != "1" || hgetall.Val()["f"] != "v" {
		t.Fatalf("pipeline through the proxy: %v %q %v", err, get.Val(), hgetall.Val())
	}
	sub := c.Subscribe(ctx, "ch")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "ch", "hello").Err(); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.ReceiveMessage(ctx); err != nil || m.Payload != "hello" {
		t.Fatalf("pub/sub through the proxy: %v %v", m, err)
	}

	// A NOSCRIPT error is let through (SkipErrors); go-redis then EVALs.
	script := redis.NewScript(`return redis.call('INCR', KEYS[1])`)
	if n, err := script.Run(ctx, c, []string{"n"}).Int(); err != nil || n != 1 {
		t.Fatalf("script: %d, %v", n, err)
	}
	// Now loaded: the EVALSHA's reply is lost, the INCR happened.
	if err := script.Run(ctx, c, []string{"n"}).Err(); err == nil {
		t.Fatal("EVALSHA: the reply should have been lost")
	}
	if err := c.HSetNX(ctx, "k", "f", "v").Err(); err == nil {
		t.Fatal("HSETNX: the reply should have been lost")
	}
	if ok, err := c.HSetNX(ctx, "k", "f", "w").Result(); err != nil || ok {
		t.Fatalf("second HSETNX: %v %v (want false: the first one ran)", ok, err)
	}
	if n, _ := r.Client().Get(ctx, "n").Int(); n != 2 {
		t.Errorf("n = %d, want 2 (the lost EVALSHA ran)", n)
	}
	if hsetnx.Fired() != 1 || evalErr.Fired() != 1 {
		t.Errorf("rules fired %d and %d times, want 1 each", hsetnx.Fired(), evalErr.Fired())
	}
}
