package tts

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// pcmKey is the content address of the 8 kHz PCM for one text: the SHA-256 of every
// input that changes the samples (engine, its settings, voice, text, resampler design
// and output rate), each length-prefixed so no two tuples hash alike.
func pcmKey(engine, config, voice, text string, extra ...string) string {
	return contentKey(append([]string{"vms-tts-pcm/v1", engine, config, voice, text, resampleVersion, fmt.Sprint(SampleRate)}, extra...)...)
}

// contentKey is the SHA-256 of the length-prefixed fields, in hex.
func contentKey(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// diskCache keeps 8 kHz PCM as playable WAV files at <dir>/pcm/<key[:2]>/<key>.wav.
// Files are written to a temporary name in the same directory and renamed into place,
// so readers (in this or another process sharing the directory) never see a partial
// file. Entries are never modified, only replaced by an identical file.
//
// The cache is bounded by maxBytes (0: unbounded) with least-recently-used eviction
// by file modification time (see evict.go), and several processes may share it: a
// per-key flock (disklock.go) makes one of them synthesize while the others wait.
type diskCache struct {
	dir      string
	maxBytes int64
	mu       sync.Mutex
	approx   int64 // bytes believed to be in the cache; -1 until the first scan
}

func openDiskCache(dir string) (*diskCache, error) {
	if dir == "" {
		return nil, fmt.Errorf("tts: empty cache directory: set a directory the worker can write, e.g. /var/cache/vms/tts")
	}
	root := filepath.Join(dir, "pcm")
	for _, d := range []string{root, filepath.Join(dir, "locks")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("tts: create cache directory: %w: make %s writable by the worker", err, dir)
		}
	}
	probe, err := os.CreateTemp(root, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("tts: cache directory not writable: %w: fix the permissions of %s", err, dir)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &diskCache{dir: dir, approx: -1}, nil
}

func (c *diskCache) path(key string) string {
	return filepath.Join(c.dir, "pcm", key[:2], key+".wav")
}

// load returns the cached PCM for key. A missing file is an error satisfying
// errors.Is(err, fs.ErrNotExist); a damaged file is any other error.
func (c *diskCache) load(key string) ([]int16, error) {
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return nil, err
	}
	pcm, rate, err := parseWAV(b)
	if err != nil {
		return nil, fmt.Errorf("tts: damaged cache file %s: %w", c.path(key), err)
	}
	if rate != SampleRate {
		return nil, fmt.Errorf("tts: cache file %s is %d Hz, want %d", c.path(key), rate, SampleRate)
	}
	return pcm, nil
}

// store writes pcm for key atomically (temporary file, fsync, rename).
func (c *diskCache) store(key string, pcm []int16) (err error) {
	final := c.path(key)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tts: cache: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+key+".*.tmp")
	if err != nil {
		return fmt.Errorf("tts: cache: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(appendWAV(make([]byte, 0, 44+2*len(pcm)), pcm, SampleRate)); err != nil {
		return fmt.Errorf("tts: cache: write %s: %w", f.Name(), err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("tts: cache: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("tts: cache: sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tts: cache: close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return fmt.Errorf("tts: cache: %w", err)
	}
	return nil
}

// ContentKey returns a content address for the fields: the hex SHA-256 of each field
// length-prefixed, so no two lists of fields share a key. Use it for CachedPCM keys.
func ContentKey(fields ...string) string { return contentKey(fields...) }
