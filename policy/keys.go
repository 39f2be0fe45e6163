package policy

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// generatedKeyKey holds the random key used when no policy.hmac_secret is
// configured.
const generatedKeyKey = "vms:policy:generated-hmac-key"

// keyring derives the keys of number hashes and of the audit chain from
// the configured secret (or, without one, from a random key kept in Redis,
// created once per deployment).
type keyring struct {
	rdb    redis.UniversalClient
	secret []byte

	mu     sync.Mutex
	number []byte
	audit  []byte
}

func (k *keyring) load(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.number != nil {
		return nil
	}
	secret := k.secret
	if len(secret) == 0 {
		var b [32]byte
		_, _ = rand.Read(b[:])
		if err := k.rdb.SetNX(ctx, generatedKeyKey, hex.EncodeToString(b[:]), 0).Err(); err != nil {
			return fmt.Errorf("policy: create the generated hmac key: %w", err)
		}
		s, err := k.rdb.Get(ctx, generatedKeyKey).Result()
		if errors.Is(err, redis.Nil) || s == "" {
			return errors.New("policy: generated hmac key vanished from Redis: set policy.hmac_secret_env")
		} else if err != nil {
			return fmt.Errorf("policy: read the generated hmac key: %w", err)
		}
		secret = []byte(s)
	}
	k.number = derive(secret, "vms number hash v1")
	k.audit = derive(secret, "vms audit chain v1")
	return nil
}

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// NumberHash returns the keyed hash that stands for a number in Redis keys.
func (k *keyring) numberHash(ctx context.Context, number string) (string, error) {
	if err := k.load(ctx); err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, k.number)
	m.Write([]byte(number))
	return hex.EncodeToString(m.Sum(nil))[:32], nil
}

func (k *keyring) auditKey(ctx context.Context) ([]byte, error) {
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	return k.audit, nil
}
