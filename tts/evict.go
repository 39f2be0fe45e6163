package tts

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// touchAfter is how old a cache file's modification time must be before a read
// refreshes it: eviction is least-recently-used by modification time, to a precision
// that does not need a write on every read.
const touchAfter = time.Minute

// touch marks the file of key as used now (best effort).
func (c *diskCache) touch(key string) {
	p := c.path(key)
	if st, err := os.Stat(p); err == nil && time.Since(st.ModTime()) > touchAfter {
		now := time.Now()
		_ = os.Chtimes(p, now, now)
	}
}

// added records n more bytes in the cache and evicts when the bound is exceeded.
func (c *diskCache) added(n int64) (evicted int, err error) {
	if c.maxBytes <= 0 {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.approx >= 0 {
		c.approx += n
		if c.approx <= c.maxBytes {
			return 0, nil
		}
	}
	return c.evictLocked()
}

type cacheFile struct {
	path string
	size int64
	used time.Time
}

// evictLocked removes the least recently used files until the cache holds at most 90%
// of maxBytes (so eviction does not run again on every store). It scans the directory,
// which also learns what other processes sharing it have written. Only one process
// evicts at a time; the others skip (their next store tries again). A file removed
// while another process is about to read it only costs that process a new synthesis.
func (c *diskCache) evictLocked() (evicted int, err error) {
	unlock, err := flockFile(context.Background(), filepath.Join(c.dir, "locks", "evict.lock"), false)
	if err != nil {
		return 0, nil // another process is evicting
	}
	defer unlock()
	var files []cacheFile
	var total int64
	err = filepath.WalkDir(filepath.Join(c.dir, "pcm"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() || filepath.Ext(path) != ".wav" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		files = append(files, cacheFile{path, info.Size(), info.ModTime()})
		total += info.Size()
		return nil
	})
	if err != nil {
		c.approx = -1
		return 0, err
	}
	low := c.maxBytes / 10 * 9
	if total > c.maxBytes {
		slices.SortFunc(files, func(a, b cacheFile) int { return a.used.Compare(b.used) })
		for _, f := range files {
			if total <= low {
				break
			}
			if err := os.Remove(f.path); err == nil || os.IsNotExist(err) {
				total -= f.size
				evicted++
			}
		}
	}
	c.approx = total
	return evicted, nil
}
