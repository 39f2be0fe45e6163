package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vms-project/vms/telephony/sim"
)

const scenarioHelp = `scenario by the last two digits of the called number:
  00 answer   01 busy (486)   02 ring forever   03 decline (603)   04 not found (404)
  05 unavailable (503)   06 early media (183+SDP, 200 after 1s)   07 digest challenge
  11..19 answer, then the callee hangs up after 1..9 s   anything else: answer
--scenario NUMBER=SCENARIO wins; SCENARIO is kind[:duration][;option]..., options:
  dtmf=KEYS@T info=KEYS@T reinvite@T update@T garbage@T bye@T fail=CODExN
  sdp=bad|g729|refuse|none|nat silent    (kinds also: blackhole)`

func cmdCarrierSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("carrier-sim", stderr)
	listen := fs.String("listen", "127.0.0.1:5080", "UDP address for SIP")
	recordDir := fs.String("record-dir", "", "directory for a WAV file and JSON summary per call")
	username := fs.String("username", "vms", "digest user of the challenge scenario")
	password := fs.String("password", "secret", "digest password of the challenge scenario")
	realm := fs.String("realm", "carrier-sim", "digest realm of the challenge scenario")
	verbose := fs.Bool("v", false, "log every SIP exchange")
	tlsCert := fs.String("tls-cert", "", "PEM certificate: also serve SIP over TLS (its address is printed)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	requireTLS := fs.Bool("require-tls", false, "refuse INVITEs that did not come over TLS (403)")
	var scenarios multiFlag
	fs.Var(&scenarios, "scenario", "NUMBER=SCENARIO, e.g. +8613800138000=hangup:3s (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vms carrier-sim [flags]")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, scenarioHelp)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	table := map[string]sim.Scenario{}
	for _, s := range scenarios {
		num, sc, ok := strings.Cut(s, "=")
		if !ok {
			return &exitError{2, fmt.Errorf("--scenario %q: use NUMBER=SCENARIO", s)}
		}
		parsed, err := sim.ParseScenario(sc)
		if err != nil {
			return &exitError{2, fmt.Errorf("--scenario %q: %w", s, err)}
		}
		table[num] = parsed
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := sim.Config{Listen: *listen, RecordDir: *recordDir, Scenarios: table, RequireTLS: *requireTLS,
		Username: *username, Password: *password, Realm: *realm, Logger: newLogger(stderr, *verbose, slog.LevelInfo)}
	if *tlsCert != "" || *tlsKey != "" || *requireTLS {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return &exitError{2, fmt.Errorf("--tls-cert/--tls-key: %w", err)}
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s, err := sim.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "carrier simulator listening on udp %s\n", s.Addr())
	if cfg.TLS != nil {
		fmt.Fprintf(stdout, "carrier simulator listening on tls %s\n", s.TLSAddr())
	}
	fmt.Fprintln(stdout, scenarioHelp)
	<-ctx.Done()
	return s.Close()
}
