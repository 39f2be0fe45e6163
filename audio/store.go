package audio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/redis/go-redis/v9"
)

// StorePrefix starts the reference of a recording in the shared audio store:
// "store:" followed by the recording's SHA-256 in hex.
const StorePrefix = "store:"

// ErrNotInStore is wrapped by Store.Get for a reference the store does not hold.
var ErrNotInStore = errors.New("not in the audio store")

// Store is the shared audio store that `vms template audio upload` puts recordings in,
// so every worker can read them. It is content-addressed: Put returns
// "store:<sha256>", and storing the same bytes twice stores them once.
type Store interface {
	// Put stores data and returns its reference.
	Put(ctx context.Context, data []byte) (ref string, err error)
	// Get returns the bytes of a reference returned by Put.
	Get(ctx context.Context, ref string) ([]byte, error)
}

// SHA256 returns the hex SHA-256 of data: the pin of a recording.
func SHA256(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func storeKey(ref string) (string, error) {
	sum, ok := strings.CutPrefix(ref, StorePrefix)
	if _, err := hex.DecodeString(sum); !ok || err != nil || len(sum) != 64 {
		return "", fmt.Errorf("audio store reference %q: want store:<64 hex digits> as printed by `vms template audio upload`", ref)
	}
	return strings.ToLower(sum), nil
}

// DirStore keeps recordings as files <Dir>/<sha256[:2]>/<sha256> in a directory all
// workers can read (a shared volume).
type DirStore struct{ Dir string }

// Put implements Store.
func (s DirStore) Put(_ context.Context, data []byte) (string, error) {
	sum := SHA256(data)
	path := filepath.Join(s.Dir, sum[:2], sum)
	if _, err := os.Stat(path); err == nil {
		return StorePrefix + sum, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("audio store %s: %w", s.Dir, err)
	}
	if err := writeAtomic(path, data); err != nil {
		return "", fmt.Errorf("audio store %s: %w", s.Dir, err)
	}
	return StorePrefix + sum, nil
}

// Get implements Store.
func (s DirStore) Get(_ context.Context, ref string) ([]byte, error) {
	sum, err := storeKey(ref)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, sum[:2], sum))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (directory %s): upload it again with `vms template audio upload`", ref, ErrNotInStore, s.Dir)
	}
	return b, err
}

// RedisStore keeps recordings in Redis under vms:audio:<sha256>, with no expiry.
type RedisStore struct{ Client redis.UniversalClient }

func redisAudioKey(sum string) string { return "vms:audio:" + sum }

// Put implements Store.
func (s RedisStore) Put(ctx context.Context, data []byte) (string, error) {
	sum := SHA256(data)
	if err := s.Client.SetNX(ctx, redisAudioKey(sum), data, 0).Err(); err != nil {
		return "", fmt.Errorf("audio store (redis): %w", err)
	}
	return StorePrefix + sum, nil
}

// Get implements Store.
func (s RedisStore) Get(ctx context.Context, ref string) ([]byte, error) {
	sum, err := storeKey(ref)
	if err != nil {
		return nil, err
	}
	b, err := s.Client.Get(ctx, redisAudioKey(sum)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%s: %w (redis): upload it again with `vms template audio upload`", ref, ErrNotInStore)
	}
	if err != nil {
		return nil, fmt.Errorf("audio store (redis): %w", err)
	}
	return b, nil
}
