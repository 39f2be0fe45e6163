package tts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockPoll is how often a Renderer retries a cache lock held by another process.
const lockPoll = 10 * time.Millisecond

// lock takes the cross-process lock that guards the synthesis of key, so that of all
// the workers sharing the cache directory only one synthesizes a prompt while the others
// wait and then read its file. Keys share 256 lock files (by their first two hex
// digits): a wait on an unrelated prompt is short and rare. The lock is an flock(2) on
// <dir>/locks/<xx>.lock, released by the returned function (and by the kernel if the
// process dies). lock returns ctx's error if ctx ends first.
func (c *diskCache) lock(ctx context.Context, key string) (unlock func(), err error) {
	return flockFile(ctx, filepath.Join(c.dir, "locks", key[:2]+".lock"), true)
}

// flockFile opens (creating) path and takes an exclusive flock on it, polling while
// another holder has it when wait is set; without wait it returns errLocked at once.
func flockFile(ctx context.Context, path string, wait bool) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tts: cache lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("tts: cache lock %s: %w", path, err)
		}
		if !wait {
			f.Close()
			return nil, errLocked
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

var errLocked = errors.New("locked by another process")
