package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vms-project/vms/internal/redistest"
)

func TestNoSecretIsRefused(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	e := New(rdb, Options{})
	if _, err := e.NumberHash(ctx, num); !errors.Is(err, ErrNoSecret) || !strings.Contains(err.Error(), "policy.hmac_secret_env") {
		t.Fatalf("number hash without a secret: %v", err)
	}
	if err := e.Start(ctx); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("start without a secret: %v", err)
	}
	if _, err := e.Audit().Verify(ctx); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("audit verify without a secret: %v", err)
	}
	if n, _ := rdb.DBSize(ctx).Result(); n != 0 {
		t.Fatalf("a refused engine wrote %d keys", n)
	}
}

func TestGeneratedKeyWhenAllowed(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	a := New(rdb, Options{AllowGeneratedKey: true})
	ha, err := a.NumberHash(ctx, num)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Audit().Record(ctx, "test", "", "", nil); err != nil {
		t.Fatal(err)
	}
	// Another process of the deployment uses the same key.
	if hb, err := New(rdb, Options{AllowGeneratedKey: true}).NumberHash(ctx, num); err != nil || hb != ha {
		t.Fatalf("second process: %s %v, want %s", hb, err, ha)
	}
	// The key is lost: a new one would forget every suppression. Refused.
	rdb.Del(ctx, generatedKeyKey)
	_, err = New(rdb, Options{AllowGeneratedKey: true}).NumberHash(ctx, num)
	if err == nil || !strings.Contains(err.Error(), "is gone from Redis but the audit log exists") {
		t.Fatalf("lost generated key: %v", err)
	}
	if n, _ := rdb.Exists(ctx, generatedKeyKey).Result(); n != 0 {
		t.Fatal("a new key was generated over the lost one")
	}
}
