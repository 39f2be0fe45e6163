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

	"github.com/vms-project/vms/config"
)

// generatedKeyKey holds the random key used when no policy.hmac_secret is
// configured and policy.allow_generated_key is true.
const generatedKeyKey = "vms:policy:generated-hmac-key"

// ErrNoSecret is returned by every keyed operation of an Engine that has no
// secret and may not generate a key (Options.AllowGeneratedKey).
var ErrNoSecret = errors.New("policy: " + config.NoSecretProblem)

// keyring derives the keys of number hashes and of the audit chain from
// the configured secret (or, when allowed, from a random key kept in
// Redis, created once per deployment).
type keyring struct {
	rdb            redis.UniversalClient
	secret         []byte
	allowGenerated bool
	// logExists reports whether the audit log has ever been written: a
	// missing generated key is then a lost key, not a new deployment.
	logExists func(ctx context.Context) (bool, error)

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
		s, err := k.generated(ctx)
		if err != nil {
			return err
		}
		secret = []byte(s)
	}
	// Each purpose gets its own key derived from the secret (HMAC of the
	// secret with a label), so a value keyed for one purpose is never
	// valid for another and none of them exposes the secret itself.
	k.number = derive(secret, "vms number hash v1")
	k.audit = derive(secret, "vms audit chain v1")
	return nil
}

// generated returns the generated key, creating it on a new deployment.
func (k *keyring) generated(ctx context.Context) (string, error) {
	if !k.allowGenerated {
		return "", ErrNoSecret
	}
	// Read whether the log exists before the key: every process creates
	// the key before it writes the log, so a log seen here with no key
	// after it means the key was lost.
	logged := false
	if k.logExists != nil {
		var err error
		if logged, err = k.logExists(ctx); err != nil {
			return "", fmt.Errorf("policy: %w", err)
		}
	}
	s, err := k.rdb.Get(ctx, generatedKeyKey).Result()
	if err == nil && s != "" {
		return s, nil
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("policy: read the generated hmac key: %w", err)
	}
	if logged {
		return "", fmt.Errorf("policy: the generated hmac key %s is gone from Redis but the audit log exists: "+
			"a new key would silently forget every suppression and consent keyed by the old one; restore %s from a backup, "+
			"or configure policy.hmac_secret_env and add the suppression lists again", generatedKeyKey, generatedKeyKey)
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	if err := k.rdb.SetNX(ctx, generatedKeyKey, hex.EncodeToString(b[:]), 0).Err(); err != nil {
		return "", fmt.Errorf("policy: create the generated hmac key: %w", err)
	}
	s, err = k.rdb.Get(ctx, generatedKeyKey).Result()
	if errors.Is(err, redis.Nil) || (err == nil && s == "") {
		return "", errors.New("policy: generated hmac key vanished from Redis: set policy.hmac_secret_env")
	} else if err != nil {
		return "", fmt.Errorf("policy: read the generated hmac key: %w", err)
	}
	return s, nil
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
