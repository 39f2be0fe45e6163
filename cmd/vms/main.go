// Command vms is the one binary of the voice message service: workers,
// senders, status, the carrier simulator and the demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/worker"
)

const usage = `vms — self-hosted voice message service

Usage:
  vms worker       -c FILE                       run a worker (SIGTERM drains calls in progress)
  vms send code    --to E164 --code DIGITS [--play-times N] [--lang L] [--id MSGID] [--json]
  vms send tts     --to E164 --template ID [--param VALUE]... [--play-times N] [--id MSGID] [--json]
  vms status       MSGID [--wait DURATION] [--json]
  vms template     add --id ID --text TEXT [--kind code|notify] [--lang L] [--param as=digits,max_len=6]... [--key 9=optout]... [--urgent]
  vms template     list | show ID | approve ID [--version N] [--force] | reject ID --reason R | disable ID   [--by NAME] [--json]
  vms template     audio upload ID FILE [--segment N] [--text TRANSCRIPT]   put a recording in the audio store; the template plays it
  vms tts          warm [--template ID]...       render every approved template's fixed parts into the audio cache
  vms consent      add|remove|check --app APP --to E164 [--source HOW] [--at RFC3339]
  vms suppress     add|remove|list [--app APP (default: global)] [--to E164] [--reason R]
  vms audit        verify [--checkpoint FILE] | checkpoint [--out FILE] | sign-head [--checkpoint FILE] | export [--out FILE]
  vms carrier-sim  [--listen ADDR] [--record-dir DIR] [--scenario NUMBER=SCENARIO]...
  vms demo         run everything in one process on embedded defaults
  vms api          -c FILE                       serve the HTTP API and deliver status callbacks
  vms billing report    [--app ID] [--from T] [--to T] [--format csv|json]
  vms billing reconcile --carrier-cdr FILE.csv [--from T] [--to T] [--format csv|json]

Every command takes -c FILE (default: embedded defaults); REDIS_URL overrides redis.url.
`

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "vms:", err)
	} else {
		code = 2
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{2, errors.New("name a command")}
	}
	switch args[0] {
	case "worker":
		return cmdWorker(ctx, args[1:], stderr)
	case "send":
		return cmdSend(ctx, args[1:], stdout, stderr)
	case "template":
		return cmdTemplate(ctx, args[1:], stdout, stderr)
	case "tts":
		return cmdTTS(ctx, args[1:], stdout, stderr) // tts.go
	case "consent":
		return cmdConsent(ctx, args[1:], stdout, stderr)
	case "suppress":
		return cmdSuppress(ctx, args[1:], stdout, stderr)
	case "audit":
		return cmdAudit(ctx, args[1:], stdout, stderr)
	case "status":
		return cmdStatus(ctx, args[1:], stdout, stderr)
	case "carrier-sim":
		return cmdCarrierSim(ctx, args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "api":
		return cmdAPI(ctx, args[1:], stderr)
	case "billing":
		return cmdBilling(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &exitError{2, fmt.Errorf("unknown command %q", args[0])}
}

// newFlags returns a flag set with the -c flag every command takes.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("vms "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "config file (default: embedded defaults)")
	return fs, cfgPath
}

// subcommand returns args[0] when it is one of words; otherwise it returns the
// usage error (exit code 2).
func subcommand(args []string, usage string, words ...string) (string, error) {
	if len(args) == 0 || !slices.Contains(words, args[0]) {
		return "", &exitError{2, errors.New(usage)}
	}
	return args[0], nil
}

// parseInterspersed parses flags that may come before or after positional
// arguments ("vms status ID --wait 5s") and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// env is what a command working on the deployment runs on: the loaded config,
// its Redis and, opened on first use, the queue client.
type env struct {
	cfg *config.Config
	rdb *redis.Client
	q   *queue.Client
}

// openEnv loads the config at cfgPath (exit code 2 when it is invalid) and
// connects to its Redis. Close releases what it opened.
func openEnv(ctx context.Context, cfgPath string) (*env, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	return connectEnv(ctx, cfg)
}

// connectEnv is openEnv for a config already loaded.
func connectEnv(ctx context.Context, cfg *config.Config) (*env, error) {
	rdb, err := openRedis(ctx, cfg.Redis.URL)
	if err != nil {
		return nil, err
	}
	return &env{cfg: cfg, rdb: rdb}, nil
}

// queue returns the queue client, opening it on first use.
func (e *env) queue() *queue.Client {
	if e.q == nil {
		e.q = worker.NewQueueClient(e.cfg, e.rdb)
	}
	return e.q
}

// Close closes the queue client, if opened, then Redis.
func (e *env) Close() {
	if e.q != nil {
		_ = e.q.Close()
	}
	_ = e.rdb.Close()
}

func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, &exitError{2, err}
	}
	return cfg, nil
}

func openRedis(ctx context.Context, url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w (start Redis or set REDIS_URL)", redactRedisURL(url), err)
	}
	return rdb, nil
}

// redactRedisURL hides a password in a Redis URL for messages.
func redactRedisURL(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}

// newLogger logs to w at level, or at debug level when verbose (-v).
func newLogger(w io.Writer, verbose bool, level slog.Level) *slog.Logger {
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// multiFlag collects a repeated string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
