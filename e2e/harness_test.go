package e2e

// The harness: one Stack per test, made of real processes on loopback.
//
//	s := StartStack(t, Options{Scenarios: map[string]string{num: "answer;dtmf=4@500ms"}})
//	rec := s.SendTTS(t, num, 1)                 // POST /v1/calls/tts, signed
//	rec = s.WaitTerminal(t, rec.ID, 30*time.Second)
//	s.CheckCallbacks(t, rec)                    // dialing/ringing/answered/final/keypress
//	s.CheckInvites(t, num, 1)                   // distinct calls the simulator saw
//
// See doc.go for the list of helpers.

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/vms-project/vms/api"
	"github.com/vms-project/vms/api/sign"
	"github.com/vms-project/vms/api/vmsclient"
	"github.com/vms-project/vms/billing"
	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony/sim"
)

// Names used in every stack's config.
const (
	AppID       = "e2e" // the API app the tests send as
	CLIApp      = "cli" // messages sent with `vms send --app cli` belong to this app
	Template    = "e2e_notice"
	LongText    = "e2e_long"
	callbackURI = "/vms/callback"
)

var (
	appKey = []byte("e2e-app-key-0123456789abcdef0123")
	cliKey = []byte("e2e-cli-key-0123456789abcdef0123")
)

// Options configures a Stack.
type Options struct {
	// Scenarios maps a called number to a carrier-sim scenario
	// (--scenario NUMBER=SCENARIO); other numbers go by their last digits.
	Scenarios map[string]string
	// Workers is how many workers StartStack starts: 0 means 1, -1 none.
	Workers int
	// Config overrides keys of the generated config by dotted path, e.g.
	// "worker.drain_timeout": "1s", "trunks.0.max_channels": 1,
	// "routing.redial.tts": map[string]any{"on": []string{"busy"}, "max": 1, "delay": "1s"}.
	Config map[string]any
	// Proxy puts a RedisProxy (no rules until Stack.Proxy.Add) between
	// vms api / vms worker and Redis. CLI commands and the harness's own
	// reads go to Redis directly.
	Proxy bool
	// NoAPI starts no vms api (no callbacks, no HTTP sends).
	NoAPI bool
}

// Stack is one deployment: Redis, the carrier simulator, vms api, workers
// and the callback receiver, all private to one test.
type Stack struct {
	// CallbackWait bounds CheckCallbacks' wait (20 s when zero).
	CallbackWait time.Duration
	T            testing.TB
	Dir          string
	Opts         Options
	Redis        *Redis
	Proxy        *RedisProxy
	Sim          *Sim
	Receiver     *Receiver
	API          *Proc
	Workers      []*Proc
	// APIURL is http://127.0.0.1:PORT of vms api; Client is signed as AppID.
	APIURL  string
	Client  *vmsclient.Client
	CfgPath string
	Started time.Time

	cfg     map[string]any
	mu      sync.Mutex
	procs   []*Proc
	workerN int
}

// StartStack starts Redis, the simulator, the receiver, vms api and the
// workers of opts, and stops them all when the test ends.
func StartStack(t testing.TB, opts Options) *Stack {
	t.Helper()
	binary(t)
	dir := t.TempDir()
	if os.Getenv("VMS_E2E_KEEP") != "" {
		dir = filepath.Join(runDir, sanitize(t.Name()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &Stack{T: t, Dir: dir, Opts: opts, Started: time.Now()}
	t.Cleanup(s.dumpLogsOnFailure) // registered first: runs after every process is stopped
	t.Cleanup(s.checkRaces)
	s.Receiver = startReceiver(t, map[string][]byte{AppID: appKey, CLIApp: cliKey})
	s.Redis = startRedis(s)
	redisAddr := s.Redis.Addr
	if opts.Proxy {
		s.Proxy = StartRedisProxy(t, s.Redis.Addr)
		redisAddr = s.Proxy.Addr
	}
	s.Sim = startSim(s, opts.Scenarios)
	apiPort := freePort(t)
	s.APIURL = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	s.cfg = baseConfig(s, "redis://"+redisAddr+"/0", apiPort)
	for k, v := range opts.Config {
		setKey(s.cfg, k, v)
	}
	s.writeConfig()
	s.Client = vmsclient.New(s.APIURL, AppID, appKey, &http.Client{Timeout: 10 * time.Second})
	if !opts.NoAPI {
		s.StartAPI()
	}
	n := opts.Workers
	if n == 0 {
		n = 1
	}
	for i := 0; i < n; i++ {
		s.StartWorker()
	}
	t.Cleanup(func() {
		if n := s.Receiver.Unsigned(); n != 0 {
			t.Errorf("receiver: %d callbacks without a valid signature: %v", n, s.Receiver.Rejections())
		}
	})
	return s
}

// baseConfig is the config every stack starts from.
func baseConfig(s *Stack, redisURL string, apiPort int) map[string]any {
	callbacks := map[string]any{
		"retry_for": "5m", "initial_backoff": "200ms", "max_backoff": "2s", "timeout": "3s", "concurrency": 8,
	}
	if configAccepts(reflect.TypeOf(config.Callbacks{}), "allow_private_hosts") {
		callbacks["allow_private_hosts"] = true // our receiver is on 127.0.0.1
	}
	events := []string{"dialing", "ringing", "answered", "final", "keypress"}
	return map[string]any{
		"redis":  map[string]any{"url": redisURL, "retention": "1h"},
		"sip":    map[string]any{"listen": "udp://127.0.0.1:0", "user_agent": "vms-e2e"},
		"rtp":    map[string]any{"port_min": 40000, "port_max": 49998},
		"worker": map[string]any{"concurrency": 4, "drain_timeout": "20s", "poll_interval": "20ms"},
		"call": map[string]any{"ring_timeout": "2s", "max_duration": "30s", "repeat_pause": "300ms",
			"media_timeout": "0s"},
		"trunks": []any{map[string]any{
			"name": "sim", "uri": "sip:" + s.Sim.Addr, "transport": "udp",
			"caller_id": "+8610" + "12345678", "codecs": []string{"PCMU", "PCMA"},
		}},
		"routing": map[string]any{
			// A stack's calls are few; keep the one trunk up whatever they hit.
			"failure_threshold": 1000, "cooloff": "1s", "probe_interval": "1s",
			"channel_lease": "30s", "limit_wait": "2s",
			"redial": map[string]any{"code": map[string]any{"max": 0}, "tts": map[string]any{"max": 0}},
		},
		"tts":  map[string]any{"engine": "espeak-ng", "voice": "en-us", "cache_dir": ttsCache},
		"code": map[string]any{"language": "en"},
		"policy": map[string]any{
			"hmac_secret": "e2e-policy-secret-0123456789abcdef", "hmac_secret_env": "",
			"apps": map[string]any{"default": map[string]any{"consent": "trusted"}},
			// The tests call the same simulator numbers at any hour.
			"frequency":   map[string]any{"code": []any{}, "notify": []any{}},
			"quiet_hours": map[string]any{"code": map[string]any{"start": "", "end": ""}, "notify": map[string]any{"start": "", "end": ""}},
		},
		"templates": []any{
			map[string]any{"id": Template, "name": "e2e notice", "kind": "notify", "language": "en", "status": "approved",
				"text": "Hello {1}, this is a short notice.", "params": []any{map[string]any{"as": "text", "max_len": 20}}},
			map[string]any{"id": LongText, "name": "e2e long notice", "kind": "notify", "language": "en", "status": "approved",
				"text":   "Hello {1}. This notice is longer, so that the call stays up for several seconds while the test does its work.",
				"params": []any{map[string]any{"as": "text", "max_len": 20}}},
		},
		"api": map[string]any{
			"listen": fmt.Sprintf("127.0.0.1:%d", apiPort),
			"apps": []any{
				map[string]any{"id": AppID, "key": string(appKey), "rate_limit": 5000,
					"callback_url": s.Receiver.URL, "callback_events": events, "templates": []string{"*"}},
				map[string]any{"id": CLIApp, "key": string(cliKey), "rate_limit": 5000,
					"callback_url": s.Receiver.URL, "callback_events": events, "templates": []string{"*"}},
			},
			"callbacks": callbacks,
		},
	}
}

// configAccepts reports whether a config struct has a field with that YAML key.
func configAccepts(t reflect.Type, key string) bool {
	for i := 0; i < t.NumField(); i++ {
		if strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0] == key {
			return true
		}
	}
	return false
}

// setKey sets a dotted key ("a.b.0.c") in a config tree, creating maps on the way.
func setKey(m map[string]any, dotted string, v any) {
	parts := strings.Split(dotted, ".")
	var cur any = m
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[p] = v
				return
			}
			next, ok := c[p]
			if !ok || next == nil {
				next = map[string]any{}
				c[p] = next
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n >= len(c) {
				panic(fmt.Sprintf("setKey %s: %q is not an index of a %d-element list", dotted, p, len(c)))
			}
			if last {
				c[n] = v
				return
			}
			cur = c[n]
		default:
			panic(fmt.Sprintf("setKey %s: %q is not a map or list", dotted, strings.Join(parts[:i], ".")))
		}
	}
}

// writeConfig writes the config file and checks that vms accepts it.
func (s *Stack) writeConfig() {
	s.T.Helper()
	b, err := yaml.Marshal(s.cfg)
	if err != nil {
		s.T.Fatal(err)
	}
	s.CfgPath = filepath.Join(s.Dir, "vms.yaml")
	if err := os.WriteFile(s.CfgPath, b, 0o600); err != nil {
		s.T.Fatal(err)
	}
	if _, err := config.Load(s.CfgPath); err != nil {
		s.T.Fatalf("the generated config is refused: %v\n%s", err, b)
	}
}

// SetConfig changes a key and rewrites the config file; processes started
// afterwards use it.
func (s *Stack) SetConfig(dotted string, v any) {
	setKey(s.cfg, dotted, v)
	s.writeConfig()
}

// ---- processes ----

// Proc is one child process. Its stderr goes to Dir/NAME.log, stdout to
// Dir/NAME.out.
type Proc struct {
	Name    string
	LogPath string
	OutPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// spawn starts a process that is SIGKILLed when the test ends (if still running).
func (s *Stack) spawn(name string, env []string, bin string, args ...string) *Proc {
	s.T.Helper()
	p := &Proc{Name: name, LogPath: filepath.Join(s.Dir, name+".log"), OutPath: filepath.Join(s.Dir, name+".out"),
		done: make(chan struct{})}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.T.Fatal(err)
	}
	outf, err := os.OpenFile(p.OutPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.T.Fatal(err)
	}
	fmt.Fprintf(logf, "=== %s %s: %s %s\n", time.Now().Format("15:04:05.000"), name, bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = outf, logf
	// Own process group (a ^C to the test does not signal it twice) and
	// killed if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.T.Fatalf("start %s: %v", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		_ = outf.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.T.Cleanup(func() { p.Kill() })
	return p
}

// PID is the process ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	if p.Running() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// Term sends SIGTERM and waits up to timeout for the exit; then SIGKILL.
// It returns whether the process exited by itself, and its error.
func (p *Proc) Term(timeout time.Duration) (bool, error) {
	if p.Running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		p.Kill()
		return false, p.err
	}
}

// Signal sends sig (e.g. SIGSTOP) to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Log returns the process's stderr so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// WaitLog waits until the process's stderr contains substr.
func (p *Proc) WaitLog(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Log(), substr) {
		if !p.Running() {
			t.Fatalf("%s exited (%v) before logging %q:\n%s", p.Name, p.err, substr, tail(p.Log(), 40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %s:\n%s", p.Name, substr, timeout, tail(p.Log(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartWorker starts one more `vms worker` and waits until it runs.
func (s *Stack) StartWorker() *Proc {
	s.T.Helper()
	s.mu.Lock()
	s.workerN++
	name := fmt.Sprintf("worker%d", s.workerN)
	s.mu.Unlock()
	p := s.spawn(name, nil, vmsBin, "worker", "-c", s.CfgPath)
	p.WaitLog(s.T, "worker started", 30*time.Second)
	s.mu.Lock()
	s.Workers = append(s.Workers, p)
	s.mu.Unlock()
	return p
}

// StartAPI starts `vms api` and waits until /healthz answers.
func (s *Stack) StartAPI() *Proc {
	s.T.Helper()
	p := s.spawn("api", nil, vmsBin, "api", "-c", s.CfgPath)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.APIURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if !p.Running() || time.Now().After(deadline) {
			s.T.Fatalf("vms api did not come up (%v):\n%s", err, tail(p.Log(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.API = p
	return p
}

// Vms runs a vms CLI command with -c (REDIS_URL: Redis itself, not the
// proxy) and returns stdout, stderr and the exit code.
func (s *Stack) Vms(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	full := append([]string{}, args...)
	// -c goes after the subcommand words, before the first flag.
	i := 0
	for i < len(full) && !strings.HasPrefix(full[i], "-") && i < 2 {
		i++
	}
	full = append(full[:i], append([]string{"-c", s.CfgPath}, full[i:]...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, vmsBin, full...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "REDIS_URL=redis://"+s.Redis.Addr+"/0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("vms %s: %v", strings.Join(full, " "), err)
	}
	return out.String(), errb.String(), code
}

// checkRaces fails the test when a race-built child reported a data race.
func (s *Stack) checkRaces() {
	s.mu.Lock()
	procs := append([]*Proc(nil), s.procs...)
	s.mu.Unlock()
	for _, p := range procs {
		if log := p.Log(); strings.Contains(log, "WARNING: DATA RACE") {
			i := strings.Index(log, "WARNING: DATA RACE")
			s.T.Errorf("%s (pid %d) reported a data race:\n%s", p.Name, p.PID(), tail(log[i:], 40))
		}
	}
}

func (s *Stack) dumpLogsOnFailure() {
	if !s.T.Failed() {
		return
	}
	s.mu.Lock()
	procs := append([]*Proc(nil), s.procs...)
	s.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range procs {
		if seen[p.LogPath] {
			continue
		}
		seen[p.LogPath] = true
		s.T.Logf("----- %s (pid %d) stderr, last lines -----\n%s", p.Name, p.PID(), tail(p.Log(), 80))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == ':' {
			return '_'
		}
		return r
	}, s)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ---- Redis ----

// Redis is the stack's redis-server: TCP on 127.0.0.1, AOF with
// appendfsync always, no RDB snapshots, its files in Dir.
type Redis struct {
	s    *Stack
	Dir  string
	Port int
	Addr string
	proc *Proc
	rdb  *redis.Client
	n    int
}

func startRedis(s *Stack) *Redis {
	s.T.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.T.Fatalf("redis-server not found: install it with `apt-get install -y redis-server`")
	}
	_ = bin
	r := &Redis{s: s, Dir: filepath.Join(s.Dir, "redis")}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		s.T.Fatal(err)
	}
	for try := 0; ; try++ {
		r.Port = freePort(s.T)
		r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
		if err := r.start(); err == nil {
			break
		} else if try == 4 {
			s.T.Fatal(err)
		}
	}
	r.rdb = redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 5 * time.Second})
	s.T.Cleanup(func() { _ = r.rdb.Close() })
	return r
}

func (r *Redis) start() error {
	r.n++
	r.proc = r.s.spawn(fmt.Sprintf("redis%d", r.n), nil, "redis-server",
		"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--dir", r.Dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--protected-mode", "no")
	return r.waitReady(30 * time.Second)
}

func (r *Redis) waitReady(timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if !r.proc.Running() || time.Now().After(deadline) {
			r.proc.Kill()
			return fmt.Errorf("redis-server on %s did not start: %v\n%s", r.Addr, err, tail(r.proc.Log()+readFile(r.proc.OutPath), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client is a go-redis client of the harness (not going through a proxy).
func (r *Redis) Client() *redis.Client { return r.rdb }

// URL is the go-redis URL of the server itself.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Kill SIGKILLs redis-server (what it acknowledged is in its AOF).
func (r *Redis) Kill() { r.proc.Kill() }

// Restart starts redis-server again on the same port from the same
// directory (and so the same AOF) and waits until it has loaded it.
func (r *Redis) Restart() {
	r.s.T.Helper()
	if r.proc.Running() {
		r.s.T.Fatal("Redis.Restart: redis-server is still running; Kill it first")
	}
	if err := r.start(); err != nil {
		r.s.T.Fatal(err)
	}
}

// Freeze stops redis-server with SIGSTOP: connections stay open but nothing
// is answered until Thaw.
func (r *Redis) Freeze() { _ = r.proc.Signal(syscall.SIGSTOP) }

// Thaw continues a frozen redis-server.
func (r *Redis) Thaw() { _ = r.proc.Signal(syscall.SIGCONT) }

// FreezeFor freezes redis-server for d (blocking).
func (r *Redis) FreezeFor(d time.Duration) {
	r.Freeze()
	defer r.Thaw()
	time.Sleep(d)
}

// DownFor kills redis-server, waits d (connections are refused meanwhile)
// and restarts it from its AOF.
func (r *Redis) DownFor(d time.Duration) {
	r.Kill()
	time.Sleep(d)
	r.Restart()
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// ---- carrier simulator ----

// Sim is the stack's `vms carrier-sim`, writing a WAV and a JSON summary per
// call into Dir once the call ends.
type Sim struct {
	s    *Stack
	Addr string // 127.0.0.1:PORT, UDP (and TCP)
	Dir  string
	args []string
	proc *Proc
	n    int
}

func startSim(s *Stack, scenarios map[string]string) *Sim {
	s.T.Helper()
	m := &Sim{s: s, Dir: filepath.Join(s.Dir, "calls")}
	nums := make([]string, 0, len(scenarios))
	for n := range scenarios {
		nums = append(nums, n)
	}
	sort.Strings(nums)
	for _, n := range nums {
		m.args = append(m.args, "--scenario", n+"="+scenarios[n])
	}
	m.start("127.0.0.1:0")
	return m
}

func (m *Sim) start(listen string) {
	m.s.T.Helper()
	m.n++
	args := append([]string{"carrier-sim", "--listen", listen, "--record-dir", m.Dir}, m.args...)
	m.proc = m.s.spawn(fmt.Sprintf("sim%d", m.n), nil, vmsBin, args...)
	const prefix = "carrier simulator listening on udp "
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range strings.Split(readFile(m.proc.OutPath), "\n") {
			if addr, ok := strings.CutPrefix(line, prefix); ok {
				m.Addr = strings.TrimSpace(addr)
				return
			}
		}
		if !m.proc.Running() || time.Now().After(deadline) {
			m.s.T.Fatalf("carrier-sim did not start:\n%s", tail(m.proc.Log(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Calls returns every call whose summary the simulator has written (ended
// calls), in INVITE order.
func (m *Sim) Calls() []sim.CallRecord {
	files, _ := filepath.Glob(filepath.Join(m.Dir, "*.json"))
	out := make([]sim.CallRecord, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var rec sim.CallRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			continue // being written
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InviteAt.Before(out[j].InviteAt) })
	return out
}

// CallsTo returns the ended calls to number.
func (m *Sim) CallsTo(number string) []sim.CallRecord {
	var out []sim.CallRecord
	for _, c := range m.Calls() {
		if c.To == number {
			out = append(out, c)
		}
	}
	return out
}

// WaitCall waits until an ended call to number satisfies cond (nil: any).
func (m *Sim) WaitCall(number string, timeout time.Duration, cond func(sim.CallRecord) bool) (sim.CallRecord, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, c := range m.CallsTo(number) {
			if cond == nil || cond(c) {
				return c, true
			}
		}
		if time.Now().After(deadline) {
			return sim.CallRecord{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Flush stops the simulator with SIGTERM, which ends the calls still up
// (BYE for answered ones, 480 for ringing ones) and writes their summaries,
// then starts it again on the same address. After Flush, Calls lists every
// call the simulator ever received. The calls it ended are hung_up_by
// "callee" at the moment of the flush.
func (m *Sim) Flush() {
	m.s.T.Helper()
	if ok, _ := m.proc.Term(15 * time.Second); !ok {
		m.s.T.Errorf("carrier-sim did not stop within 15s of SIGTERM")
	}
	m.start(m.Addr)
}

// Stop stops the simulator with SIGTERM (see Flush) and does not restart it.
func (m *Sim) Stop() { _, _ = m.proc.Term(15 * time.Second) }

// ---- callback receiver ----

// Callback is one status callback as the receiver got it.
type Callback struct {
	EventID     string    `json:"event_id"`
	Event       string    `json:"event"`
	MessageID   string    `json:"message_id"`
	AppID       string    `json:"app_id"`
	Status      string    `json:"status"`
	Final       bool      `json:"final"`
	Attempt     int       `json:"attempt"`
	OccurredAt  time.Time `json:"occurred_at"`
	SIPCode     int       `json:"sip_code"`
	HungUpBy    string    `json:"hung_up_by"`
	BillableMS  int64     `json:"billable_ms"`
	BillableMin int       `json:"billable_minutes"`
	DTMF        string    `json:"dtmf"`
	// Received is when the receiver got it; Body the raw JSON.
	Received time.Time       `json:"-"`
	Body     json.RawMessage `json:"-"`
}

func (c Callback) String() string {
	return fmt.Sprintf("%s(attempt %d, status %s, billable %d ms, dtmf %q, id %s)", c.Event, c.Attempt, c.Status, c.BillableMS, c.DTMF, c.EventID)
}

// Receiver is the apps' callback URL: it verifies every request's signature
// with api/sign (as the README tells receivers to), answers 200 to valid
// ones and records them, and answers 401 to the others and counts them.
type Receiver struct {
	URL  string
	srv  *httptest.Server
	keys map[string][]byte

	mu       sync.Mutex
	got      []Callback
	rejected []string
}

func startReceiver(t testing.TB, keys map[string][]byte) *Receiver {
	r := &Receiver{keys: keys}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.URL = r.srv.URL + callbackURI
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	app := req.Header.Get(sign.HeaderAppID)
	key, ok := r.keys[app]
	reason := ""
	var cb Callback
	switch {
	case !ok:
		reason = fmt.Sprintf("unknown app %q", app)
	case req.Method != http.MethodPost || req.URL.Path != callbackURI:
		reason = fmt.Sprintf("%s %s", req.Method, req.URL.Path)
	case !sign.Valid(key, req.Header.Get(sign.HeaderSignature), req.Method, req.URL.RequestURI(),
		req.Header.Get(sign.HeaderTimestamp), req.Header.Get(sign.HeaderNonce), body):
		reason = "signature does not verify"
	case json.Unmarshal(body, &cb) != nil:
		reason = "body is not JSON: " + string(body)
	case cb.EventID == "" || cb.EventID != req.Header.Get(sign.HeaderEventID):
		reason = fmt.Sprintf("event_id %q, %s header %q", cb.EventID, sign.HeaderEventID, req.Header.Get(sign.HeaderEventID))
	case cb.AppID != app:
		reason = fmt.Sprintf("app_id %q signed as %q", cb.AppID, app)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if reason != "" {
		r.rejected = append(r.rejected, reason)
		http.Error(w, reason, http.StatusUnauthorized)
		return
	}
	cb.Received, cb.Body = time.Now(), body
	r.got = append(r.got, cb)
	w.WriteHeader(http.StatusOK)
}

// All returns every verified callback, in arrival order.
func (r *Receiver) All() []Callback {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Callback(nil), r.got...)
}

// Events returns the verified callbacks of one message, in arrival order
// (redeliveries of one event_id included).
func (r *Receiver) Events(messageID string) []Callback {
	var out []Callback
	for _, c := range r.All() {
		if c.MessageID == messageID {
			out = append(out, c)
		}
	}
	return out
}

// Unsigned counts requests refused for their signature (or other checks).
func (r *Receiver) Unsigned() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rejected)
}

// Rejections says why each refused request was refused.
func (r *Receiver) Rejections() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.rejected...)
}

// ---- sending and reading ----

// SendTTS sends the template Template (or LongText with playTimes < 0 meaning
// LongText played -playTimes times) to number through POST /v1/calls/tts.
func (s *Stack) SendTTS(t testing.TB, number string, playTimes int) *queue.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rec, err := s.Client.SendTTS(ctx, ttsCall(number, playTimes, ""))
	if err != nil {
		t.Fatalf("POST /v1/calls/tts to %s: %v", number, err)
	}
	return rec
}

// ttsCall is the request SendTTS makes (playTimes < 0: LongText).
func ttsCall(number string, playTimes int, id string) api.TTSCall {
	tmpl := Template
	if playTimes < 0 {
		tmpl, playTimes = LongText, -playTimes
	}
	return api.TTSCall{To: number, TemplateID: tmpl, Params: []string{"Alex"}, PlayTimes: playTimes,
		MessageID: id, SessionContext: "e2e"}
}

// SendCode sends a verification code call through POST /v1/calls/code.
func (s *Stack) SendCode(t testing.TB, number, code string) *queue.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rec, err := s.Client.SendCode(ctx, api.CodeCall{To: number, Code: code, PlayTimes: 1, Language: "en"})
	if err != nil {
		t.Fatalf("POST /v1/calls/code to %s: %v", number, err)
	}
	return rec
}

// SendCLI runs `vms send ARGS... --json` (e.g. "tts", "--to", n,
// "--template", Template, "--param", "Alex") and returns the record. Its
// messages belong to app CLIApp.
func (s *Stack) SendCLI(t testing.TB, args ...string) *queue.Record {
	t.Helper()
	out, errOut, code := s.Vms(t, append(append([]string{"send"}, args...), "--app", CLIApp, "--json")...)
	if code != 0 {
		t.Fatalf("vms send %v: exit %d: %s", args, code, errOut)
	}
	var rec queue.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("vms send --json: %v: %s", err, out)
	}
	return &rec
}

// keyOf is the key (queue.Key) of message id: AppID's, or CLIApp's when
// only that app has a message of this ID (message IDs are per app).
func (s *Stack) keyOf(t testing.TB, id string) string {
	t.Helper()
	q := queue.NewClient(s.Redis.Client(), queue.Options{})
	defer q.Close()
	if _, err := q.Get(context.Background(), queue.Key(AppID, id)); err == nil {
		return queue.Key(AppID, id)
	}
	return queue.Key(CLIApp, id)
}

// Get reads a record through GET /v1/calls/{id} (messages of AppID).
func (s *Stack) Get(id string) (*queue.Record, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Client.Get(ctx, id)
}

// StatusCLI reads a record with `vms status APP/ID --json` (the message of
// AppID, or of CLIApp when the API app has none of that ID; Redis
// directly, so it works when vms api does not).
func (s *Stack) StatusCLI(t testing.TB, id string) *queue.Record {
	t.Helper()
	out, errOut, code := s.Vms(t, "status", s.keyOf(t, id), "--reveal", "--json")
	if code != 0 {
		t.Fatalf("vms status %s: exit %d: %s", id, code, errOut)
	}
	var rec queue.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("vms status --json: %v: %s", err, out)
	}
	return &rec
}

// WaitTerminalCLI waits with `vms status ID --wait` (any app, Redis
// directly) until the message is terminal.
func (s *Stack) WaitTerminalCLI(t testing.TB, id string, timeout time.Duration) *queue.Record {
	t.Helper()
	out, errOut, code := s.Vms(t, "status", s.keyOf(t, id), "--reveal", "--wait", timeout.String(), "--json")
	if code != 0 {
		t.Fatalf("vms status %s --wait %s: exit %d: %s%s", id, timeout, code, errOut, out)
	}
	var rec queue.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("vms status --json: %v: %s", err, out)
	}
	return &rec
}

// Cancel cancels a message through POST /v1/calls/{id}/cancel.
func (s *Stack) Cancel(t testing.TB, id string) *queue.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec, err := s.Client.Cancel(ctx, id)
	if err != nil {
		t.Fatalf("cancel %s: %v", id, err)
	}
	return rec
}

// pollEvery is how often WaitRecord reads the record.
const pollEvery = 10 * time.Millisecond

// WaitRecord polls GET /v1/calls/{id} until cond holds and returns that
// record; errors (Redis down...) are retried. It fails the test on timeout.
func (s *Stack) WaitRecord(t testing.TB, id string, timeout time.Duration, what string, cond func(*queue.Record) bool) *queue.Record {
	t.Helper()
	rec, err := s.TryWaitRecord(id, timeout, cond)
	if err != nil {
		t.Fatalf("message %s: waiting for %s: %v", id, what, err)
	}
	return rec
}

// TryWaitRecord is WaitRecord returning an error instead of failing.
func (s *Stack) TryWaitRecord(id string, timeout time.Duration, cond func(*queue.Record) bool) (*queue.Record, error) {
	deadline := time.Now().Add(timeout)
	var last *queue.Record
	var lastErr error
	for {
		rec, err := s.Get(id)
		if err == nil {
			last, lastErr = rec, nil
			if cond(rec) {
				return rec, nil
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return last, fmt.Errorf("not within %s; last record: status %s, attempt %d, reason %q (last error: %v)",
					timeout, last.Status, last.Attempt, last.Reason, lastErr)
			}
			return nil, fmt.Errorf("not within %s: %v", timeout, lastErr)
		}
		time.Sleep(pollEvery)
	}
}

// Terminal reports whether a status is a known terminal one: the empty
// status (a record without its state) is not.
func Terminal(st queue.Status) bool { return st != "" && st.Terminal() }

// WaitTerminal waits until the message is in a terminal state.
func (s *Stack) WaitTerminal(t testing.TB, id string, timeout time.Duration) *queue.Record {
	t.Helper()
	return s.WaitRecord(t, id, timeout, "a terminal state", func(r *queue.Record) bool { return Terminal(r.Status) })
}

// History returns the states a message went through, oldest first, as
// `vms status --json` shows them.
func (s *Stack) History(t testing.TB, id string) []string {
	t.Helper()
	out, errOut, code := s.Vms(t, "status", s.keyOf(t, id), "--reveal", "--json")
	if code != 0 {
		t.Fatalf("vms status %s: exit %d: %s", id, code, errOut)
	}
	var rec struct {
		Events []queue.Event `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("vms status --json: %v\n%s", err, out)
	}
	var states []string
	for _, ev := range rec.Events {
		states = append(states, string(ev.Status))
	}
	return states
}

// WaitStatus waits until the message is in one of the states.
func (s *Stack) WaitStatus(t testing.TB, id string, timeout time.Duration, states ...queue.Status) *queue.Record {
	t.Helper()
	return s.WaitRecord(t, id, timeout, fmt.Sprint(states), func(r *queue.Record) bool {
		for _, st := range states {
			if r.Status == st {
				return true
			}
		}
		return false
	})
}

// ---- checks ----

// expectedEvent is one callback a record calls for.
type expectedEvent struct {
	Event   string
	Attempt int
	Status  string // "" for any
	// BillableMS is checked when >= 0.
	BillableMS int64
	DTMF       string
}

func (e expectedEvent) key() string { return fmt.Sprintf("%s/%d", e.Event, e.Attempt) }

// attemptView is what a record says about one attempt.
type attemptView struct {
	status            queue.Status
	rang, answered    bool
	billableMS        int64
	keys              string
	hasOutcome, known bool
}

// attemptsOf describes attempts 1..rec.Attempt from the record and its
// attempts list.
func attemptsOf(rec *queue.Record) map[int]attemptView {
	out := map[int]attemptView{}
	for _, a := range rec.Attempts {
		v := out[a.Attempt]
		v.known = true
		v.rang = v.rang || !a.RingingAt.IsZero() || !a.AnsweredAt.IsZero()
		v.answered = v.answered || !a.AnsweredAt.IsZero()
		v.status, v.billableMS, v.hasOutcome = a.Status, a.BillableMS, true
		out[a.Attempt] = v
	}
	if rec.Attempt > 0 {
		v := out[rec.Attempt]
		v.known = true
		v.status, v.billableMS = rec.Status, rec.BillableMS
		v.rang = v.rang || !rec.RingingAt.IsZero() || !rec.AnsweredAt.IsZero()
		v.answered = v.answered || !rec.AnsweredAt.IsZero()
		var b strings.Builder
		for _, k := range rec.Keys {
			b.WriteString(k.Key)
		}
		v.keys = b.String()
		out[rec.Attempt] = v
	}
	return out
}

// ExpectedCallbacks lists the callbacks a terminal record calls for: per
// attempt one dialing, ringing and answered where they happened, exactly one
// final (the last one with the record's status and billable_ms), and one
// keypress when keys were pressed; a message never claimed (canceled,
// blocked) one final of attempt 0.
func ExpectedCallbacks(rec *queue.Record) []expectedEvent {
	var out []expectedEvent
	if rec.Attempt == 0 {
		return []expectedEvent{{Event: "final", Attempt: 0, Status: string(rec.Status), BillableMS: 0}}
	}
	views := attemptsOf(rec)
	for a := 1; a <= rec.Attempt; a++ {
		v := views[a]
		out = append(out, expectedEvent{Event: "dialing", Attempt: a, BillableMS: -1})
		if v.rang {
			out = append(out, expectedEvent{Event: "ringing", Attempt: a, BillableMS: -1})
		}
		if v.answered {
			out = append(out, expectedEvent{Event: "answered", Attempt: a, BillableMS: -1})
		}
		fin := expectedEvent{Event: "final", Attempt: a, Status: string(v.status), BillableMS: v.billableMS}
		if !v.known {
			fin.Status, fin.BillableMS = "", -1
		}
		out = append(out, fin)
		if v.keys != "" {
			out = append(out, expectedEvent{Event: "keypress", Attempt: a, BillableMS: -1, DTMF: v.keys})
		}
	}
	return out
}

// CheckCallbacks waits (up to s.CallbackWait, 20 s unless set, for all of
// them) until the receiver has
// exactly the callbacks ExpectedCallbacks lists for each record — each event
// once by event_id, redeliveries of the same event_id allowed — and reports
// every difference.
func (s *Stack) CheckCallbacks(t testing.TB, recs ...*queue.Record) {
	t.Helper()
	problems := make([][]string, len(recs))
	wait := s.CallbackWait
	if wait == 0 {
		wait = 20 * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		bad := false
		for i, rec := range recs {
			problems[i] = compareCallbacks(ExpectedCallbacks(rec), s.Receiver.Events(rec.ID))
			bad = bad || len(problems[i]) > 0
		}
		if !bad || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, rec := range recs {
		if len(problems[i]) == 0 {
			continue
		}
		var got []string
		for _, c := range s.Receiver.Events(rec.ID) {
			got = append(got, c.String())
		}
		t.Errorf("message %s (%s, attempt %d, billable %d ms): callbacks differ from the record:\n  - %s\n  received: %s",
			rec.ID, rec.Status, rec.Attempt, rec.BillableMS, strings.Join(problems[i], "\n  - "), strings.Join(got, ", "))
	}
}

func compareCallbacks(want []expectedEvent, got []Callback) []string {
	byKey := map[string]map[string]Callback{} // event/attempt -> event_id -> callback
	for _, c := range got {
		k := fmt.Sprintf("%s/%d", c.Event, c.Attempt)
		if byKey[k] == nil {
			byKey[k] = map[string]Callback{}
		}
		byKey[k][c.EventID] = c
	}
	var problems []string
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.key()] = true
		ids := byKey[w.key()]
		switch {
		case len(ids) == 0:
			problems = append(problems, fmt.Sprintf("no %s callback for attempt %d", w.Event, w.Attempt))
			continue
		case len(ids) > 1:
			var all []string
			for _, c := range ids {
				all = append(all, c.String())
			}
			sort.Strings(all)
			problems = append(problems, fmt.Sprintf("%d distinct %s events for attempt %d (want exactly one): %s", len(ids), w.Event, w.Attempt, strings.Join(all, ", ")))
			continue
		}
		for _, c := range ids {
			if w.Status != "" && c.Status != w.Status {
				problems = append(problems, fmt.Sprintf("%s of attempt %d has status %q, the record %q", w.Event, w.Attempt, c.Status, w.Status))
			}
			if w.Event == "final" && !c.Final {
				problems = append(problems, fmt.Sprintf("final of attempt %d has final=false", w.Attempt))
			}
			if w.BillableMS >= 0 && c.BillableMS != w.BillableMS {
				problems = append(problems, fmt.Sprintf("%s of attempt %d has billable_ms %d, the record %d", w.Event, w.Attempt, c.BillableMS, w.BillableMS))
			}
			if w.DTMF != "" && c.DTMF != w.DTMF {
				problems = append(problems, fmt.Sprintf("keypress of attempt %d has dtmf %q, the record %q", w.Attempt, c.DTMF, w.DTMF))
			}
		}
	}
	var extra []string
	for k, ids := range byKey {
		if !wanted[k] {
			for _, c := range ids {
				extra = append(extra, c.String())
			}
		}
	}
	sort.Strings(extra)
	for _, e := range extra {
		problems = append(problems, "unexpected callback "+e)
	}
	return problems
}

// CheckInvites checks that the simulator saw exactly want calls (distinct
// Call-IDs) to number. Calls still up are not counted: Flush first when
// some may be.
func (s *Stack) CheckInvites(t testing.TB, number string, want int) {
	t.Helper()
	calls := s.Sim.CallsTo(number)
	// A summary is written just after the call ends; give it a moment.
	for deadline := time.Now().Add(3 * time.Second); len(calls) < want && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		calls = s.Sim.CallsTo(number)
	}
	if len(calls) != want {
		var desc []string
		for _, c := range calls {
			desc = append(desc, fmt.Sprintf("%s at %s (final %d, hung up by %q, %d ms)", c.CallID, c.InviteAt.Format("15:04:05.000"), c.FinalCode, c.HungUpBy, c.DurationMS))
		}
		t.Errorf("carrier saw %d INVITEs (calls) to %s, want %d: %v", len(calls), number, want, desc)
	}
}

// CDR is one entry of the CDR stream, as the harness reads it.
type CDR struct {
	StreamID   string
	MessageID  string
	Attempt    int
	Status     string
	BillableMS int64
	CallID     string
}

// CDRs reads every CDR entry (also the ones billing later supersedes)
// through queue.Client, the module's own reader of the CDR streams.
func (s *Stack) CDRs(t testing.TB) []CDR {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := queue.NewClient(s.Redis.Client(), queue.Options{})
	defer q.Close()
	var out []CDR
	after := ""
	for {
		page, err := q.CDRs(ctx, after, 1000)
		if err != nil {
			t.Fatalf("read the CDRs: %v", err)
		}
		for _, c := range page {
			out = append(out, CDR{StreamID: c.StreamID, MessageID: c.ID, Attempt: c.Attempt, Status: string(c.Status),
				BillableMS: c.BillableMS, CallID: c.CallID})
			after = c.StreamID
		}
		if len(page) < 1000 {
			return out
		}
	}
}

// BillingReport runs `vms billing report --format json`.
func (s *Stack) BillingReport(t testing.TB) billing.Report {
	t.Helper()
	out, errOut, code := s.Vms(t, "billing", "report", "--format", "json")
	if code != 0 {
		t.Fatalf("vms billing report: exit %d: %s", code, errOut)
	}
	var rep billing.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("vms billing report: %v: %s", err, out)
	}
	return rep
}

// CheckCDRs checks the CDRs against terminal records: per message one CDR
// per claimed attempt (the raw stream may hold a replaced unknown as well,
// which is reported as a log line), the last CDR of each attempt with the
// attempt's status and billable_ms, and `vms billing report` totals equal to
// the records' (calls = attempts, billable ms = sum).
func (s *Stack) CheckCDRs(t testing.TB, recs []*queue.Record) {
	t.Helper()
	cdrs := s.CDRs(t)
	type key struct {
		id string
		a  int
	}
	last := map[key]CDR{}
	count := map[key]int{}
	mine := map[string]bool{}
	for _, r := range recs {
		mine[r.ID] = true
	}
	for _, c := range cdrs {
		if !mine[c.MessageID] {
			continue
		}
		k := key{c.MessageID, c.Attempt}
		last[k] = c
		count[k]++
	}
	var wantCalls int
	var wantMS int64
	for _, r := range recs {
		views := attemptsOf(r)
		for a := 1; a <= r.Attempt; a++ {
			wantCalls++
			v := views[a]
			wantMS += v.billableMS
			k := key{r.ID, a}
			switch c, ok := last[k]; {
			case !ok:
				t.Errorf("message %s attempt %d (%s): no CDR", r.ID, a, v.status)
			case v.known && c.Status != string(v.status):
				t.Errorf("message %s attempt %d: CDR says %s, the record %s", r.ID, a, c.Status, v.status)
			case v.known && c.BillableMS != v.billableMS:
				t.Errorf("message %s attempt %d: CDR bills %d ms, the record %d", r.ID, a, c.BillableMS, v.billableMS)
			}
			if count[k] > 1 {
				t.Logf("note: message %s attempt %d has %d CDR entries (billing counts the last)", r.ID, a, count[k])
			}
		}
		for k := range count {
			if k.id == r.ID && (k.a < 1 || k.a > r.Attempt) {
				t.Errorf("message %s: a CDR of attempt %d, but the record has %d attempts", r.ID, k.a, r.Attempt)
			}
		}
	}
	rep := s.BillingReport(t)
	if rep.Totals.Calls != wantCalls || rep.Totals.BillableMS != wantMS {
		t.Errorf("vms billing report: %d calls, %d billable ms; the records: %d attempts, %d billable ms",
			rep.Totals.Calls, rep.Totals.BillableMS, wantCalls, wantMS)
	}
}

// Reconcile writes the simulator's calls as a carrier CDR export (call_id,
// start/answer/end, billed_seconds = the carrier's 200 OK to BYE) and runs
// `vms billing reconcile` on it for the stack's lifetime. Flush the
// simulator first so calls still up are included.
func (s *Stack) Reconcile(t testing.TB) billing.Result {
	t.Helper()
	path := filepath.Join(s.Dir, fmt.Sprintf("carrier-%d.csv", time.Now().UnixNano()))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"call_id", "start_time", "answer_time", "end_time", "billed_seconds"})
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	for _, c := range s.Sim.Calls() {
		_ = w.Write([]string{c.CallID, ts(c.InviteAt), ts(c.AnsweredAt), ts(c.EndedAt), strconv.FormatFloat(float64(c.DurationMS)/1000, 'f', 3, 64)})
	}
	w.Flush()
	_ = f.Close()
	out, errOut, code := s.Vms(t, "billing", "reconcile", "--carrier-cdr", path, "--format", "json",
		"--from", s.Started.Add(-time.Minute).UTC().Format(time.RFC3339), "--to", time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	if code != 0 && code != 5 {
		t.Fatalf("vms billing reconcile: exit %d: %s", code, errOut)
	}
	var res billing.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("vms billing reconcile: %v: %s", err, out)
	}
	return res
}

// CheckReconcile fails the test unless our CDRs and the carrier's view agree
// call by call.
func (s *Stack) CheckReconcile(t testing.TB) {
	t.Helper()
	res := s.Reconcile(t)
	if len(res.MissingAtCarrier)+len(res.MissingOurs)+len(res.Differences) > 0 {
		b, _ := json.Marshal(res)
		t.Errorf("billing reconcile with the carrier's view: missing at the carrier %v, missing ours %v, %d differences: %s",
			res.MissingAtCarrier, res.MissingOurs, len(res.Differences), b)
	}
}

// Records reads every record by ID through the CLI (works without vms api).
func (s *Stack) Records(t testing.TB, ids []string) []*queue.Record {
	t.Helper()
	out := make([]*queue.Record, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.StatusCLI(t, id))
	}
	return out
}

// CheckFaultInvariants is the end of every fault test: every message
// terminal, at most maxInvites calls per number on the carrier (after a
// Flush), one CDR per finished attempt, callbacks equal to the records'
// events and no unsigned callback.
func (s *Stack) CheckFaultInvariants(t testing.TB, ids []string, maxInvites int) []*queue.Record {
	t.Helper()
	recs := s.Records(t, ids)
	byNumber := map[string]int{}
	for _, r := range recs {
		if !Terminal(r.Status) {
			t.Errorf("message %s is %q, not terminal (reason %q)", r.ID, r.Status, r.Reason)
		}
		byNumber[r.To] = 0
	}
	s.Sim.Flush()
	for _, c := range s.Sim.Calls() {
		if _, ok := byNumber[c.To]; ok {
			byNumber[c.To]++
		}
	}
	for n, k := range byNumber {
		if k > maxInvites {
			t.Errorf("carrier saw %d INVITEs to %s (at most %d allowed): a second call", k, n, maxInvites)
		}
	}
	var done []*queue.Record
	for _, r := range recs {
		if Terminal(r.Status) { // a record still pending has no final events to compare
			done = append(done, r)
		}
	}
	s.CheckCDRs(t, done)
	s.CheckCallbacks(t, done...)
	return recs
}

// statusSummary is "completed×3 busy×1" for a log line.
func statusSummary(recs []*queue.Record) string {
	n := map[queue.Status]int{}
	for _, r := range recs {
		n[r.Status]++
	}
	var parts []string
	for st, k := range n {
		parts = append(parts, fmt.Sprintf("%s×%d", st, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
