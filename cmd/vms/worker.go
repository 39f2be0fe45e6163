package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vms-project/vms/worker"
)

func cmdWorker(ctx context.Context, args []string, stderr io.Writer) error {
	fs, cfgPath := newFlags("worker", stderr)
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
	w, err := worker.New(e.cfg, e.rdb, log)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	s := <-sig
	log.Info("stopping: no new jobs; waiting for calls in progress", "signal", s.String(), "drain_timeout", e.cfg.Worker.DrainTimeout.D())
	w.Shutdown()
	log.Info("stopped")
	return nil
}
