package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"syscall"

	"github.com/vms-project/vms/api"
	"github.com/vms-project/vms/callback"
)

// cmdAPI serves the HTTP API and delivers status callbacks until SIGTERM.
func cmdAPI(ctx context.Context, args []string, stderr io.Writer) error {
	fs, cfgPath := newFlags("api", stderr)
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger(stderr, *verbose, slog.LevelInfo)
	e, err := openEnv(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer e.Close()
	cfg, rdb, q := e.cfg, e.rdb, e.queue()
	srv, err := api.New(cfg, rdb, q, log)
	if err != nil {
		return &exitError{2, err}
	}
	cb, err := callback.New(cfg, rdb, q, log)
	if err != nil {
		return &exitError{2, err}
	}
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api.listen %s: %w", cfg.API.Listen, err)
	}
	if err := cb.Start(); err != nil {
		_ = ln.Close()
		return err
	}
	defer cb.Shutdown()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	scheme := "http"
	if srv.TLS() {
		scheme = "https"
	}
	log.Info("api serving", "addr", ln.Addr().String(), "scheme", scheme, "apps", len(cfg.API.Apps))
	err = srv.Serve(ctx, ln)
	log.Info("api stopped")
	return err
}
