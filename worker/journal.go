package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/queue"
)

// journal is a worker process's write-ahead log of state-machine ops that
// could not be written to Redis: an fsynced append-only file, one op per
// line, replayed in order as soon as Redis answers. Once anything is in it,
// every later op goes to it too, so ops of one call are applied in the
// order they happened. Replaying an op twice changes nothing (each op is
// guarded by the state it expects), so a crash during replay is harmless.
//
// Each process holds an exclusive flock on its own file. At start-up a
// worker replays (and then removes) every journal in the directory that no
// live process holds: those of workers that died with ops not yet written.
type journal struct {
	dir  string
	path string
	log  *slog.Logger
	q    *queue.Client

	mu      sync.Mutex
	f       *os.File
	pending []queue.Op
	wake    chan struct{}
}

func openJournal(dir, worker string, q *queue.Client, log *slog.Logger) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("worker.journal_dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "journal-"+worker+".log")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("worker.journal_dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("worker journal %s is held by another process: %w", path, err)
	}
	return &journal{dir: dir, path: path, log: log, q: q, f: f, wake: make(chan struct{}, 1)}, nil
}

// Pending is how many ops wait for Redis.
func (j *journal) Pending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending)
}

// record applies op now or, when Redis cannot be reached (or ops are
// already waiting), appends it to the journal for the replayer.
func (j *journal) record(op queue.Op) {
	j.mu.Lock()
	waiting := len(j.pending) > 0
	j.mu.Unlock()
	if !waiting {
		// Short: a call waits for this write (an outage's first op only;
		// later ones go straight to the journal).
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := j.q.Apply(ctx, op)
		cancel()
		if !transient(err) {
			j.logResult(op, res, err)
			return
		}
		j.log.Warn("redis unreachable: keeping the call's record in the journal", "message_id", op.ID, "op", op.Name, "err", err)
	}
	if err := j.append(op); err != nil {
		// Nothing better can be done: the disk and Redis both failed.
		j.log.Error("journal write failed: this call's record is lost", "message_id", op.ID, "op", op.Name, "err", err)
	}
}

func (j *journal) append(op queue.Op) error {
	b, err := json.Marshal(op)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := j.f.Sync(); err != nil {
		return err
	}
	j.pending = append(j.pending, op)
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// run replays pending ops, in order, until ctx ends; between failed tries
// it waits a little, so an outage of any length is waited out.
func (j *journal) run(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-j.wake:
		case <-t.C:
		}
		j.replay(ctx)
	}
}

// replay applies pending ops until one fails for want of Redis. It returns
// true when nothing is left.
func (j *journal) replay(ctx context.Context) bool {
	for {
		j.mu.Lock()
		if len(j.pending) == 0 {
			j.mu.Unlock()
			return true
		}
		op := j.pending[0]
		j.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		res, err := j.q.Apply(actx, op)
		cancel()
		if transient(err) {
			return false
		}
		j.logResult(op, res, err)
		j.mu.Lock()
		j.pending = j.pending[1:]
		if len(j.pending) == 0 {
			// Everything is in Redis: start the file afresh.
			if err := j.f.Truncate(0); err != nil {
				j.log.Error("journal truncate", "err", err)
			}
			j.log.Info("journal replayed: every recorded call is in redis")
		}
		j.mu.Unlock()
	}
}

func (j *journal) logResult(op queue.Op, res queue.OpResult, err error) {
	switch {
	case errors.Is(err, queue.ErrNotFound):
		j.log.Warn("call record expired before its progress could be written", "message_id", op.ID, "op", op.Name)
	case err != nil:
		j.log.Error("call record not written", "message_id", op.ID, "op", op.Name, "err", err)
	case !res.Applied:
		// Applied before (a replay), or another worker took the call over.
		j.log.Debug("state op not applied", "message_id", op.ID, "op", op.Name, "status", res.Prev)
	}
}

// recover replays the journals that dead worker processes left in the
// directory, oldest op first per file, and removes each once it is in
// Redis. It returns an error when Redis could not take them all (the
// files stay for the next start).
func (j *journal) recover(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(j.dir, "journal-*.log"))
	if err != nil {
		return err
	}
	for _, path := range files {
		if path == j.path {
			continue
		}
		if err := j.recoverFile(ctx, path); err != nil {
			return err
		}
	}
	return nil
}

func (j *journal) recoverFile(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil // removed by another worker meanwhile
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return nil // its worker lives
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		var op queue.Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			// A torn last line of a crash mid-write: that op was never
			// acknowledged, its call was still recording.
			j.log.Warn("journal: skipping a torn entry", "file", path, "err", err)
			continue
		}
		for {
			actx, cancel := context.WithTimeout(ctx, 3*time.Second)
			res, err := j.q.Apply(actx, op)
			cancel()
			if !transient(err) {
				j.logResult(op, res, err)
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("journal %s: redis unreachable: %w", path, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		n++
	}
	j.log.Info("journal of a stopped worker replayed", "file", filepath.Base(path), "ops", n)
	return os.Remove(path)
}

// close releases the journal; the file stays only when ops wait in it.
func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	empty := len(j.pending) == 0
	_ = j.f.Close()
	if empty {
		_ = os.Remove(j.path)
	} else {
		j.log.Error("stopping with call records not yet in redis: the next worker started on this journal_dir replays them",
			"journal", j.path, "ops", len(j.pending))
	}
}

// transient reports whether err means Redis could not take the write now
// (down, unreachable, loading, failing over) rather than refusing it.
func transient(err error) bool {
	if err == nil || errors.Is(err, queue.ErrNotFound) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false // the script refused it: replaying cannot help
	}
	return true
}
