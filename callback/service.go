package callback

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/netguard"
	"github.com/vms-project/vms/queue"
)

// Service relays state changes to callback tasks and delivers them. `vms
// api` runs one; several may run against the same Redis (the relay is a
// consumer group, the tasks are asynq's).
type Service struct {
	relay  *relay
	server *asynq.Server
	sender *sender
	log    *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds the service from cfg.API. Every app's key is resolved now.
func New(cfg *config.Config, rdb redis.UniversalClient, q *queue.Client, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cb := cfg.API.Callbacks
	apps := map[string]config.App{}
	keys := map[string][]byte{}
	hosts := map[string][]string{}
	for _, a := range cfg.API.Apps {
		k, err := a.ResolveKey()
		if err != nil {
			return nil, err
		}
		apps[a.ID], keys[a.ID], hosts[a.ID] = a, k, a.CallbackHosts
	}
	s := &Service{log: log}
	s.relay = &relay{q: q, aq: asynq.NewClientFromRedisClient(rdb), apps: apps, cfg: cb,
		consumer: newConsumerName(), log: log}
	// Redirects are not followed: a 3xx is a failed attempt. Connections
	// to non-public addresses are refused unless allow_private_hosts.
	s.sender = &sender{q: q, keys: keys, hosts: hosts, allowPrivate: cb.AllowPrivateHosts,
		retryFor: cb.RetryFor.D(), log: log,
		http: &http.Client{Timeout: cb.Timeout.D(), Transport: netguard.Transport(cb.AllowPrivateHosts),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	check := min(max(cb.InitialBackoff.D()/2, 100*time.Millisecond), 5*time.Second)
	s.server = asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              cb.Concurrency,
		Queues:                   map[string]int{Queue: 1},
		RetryDelayFunc:           Backoff(cb.InitialBackoff.D(), cb.MaxBackoff.D()),
		DelayedTaskCheckInterval: check,
		TaskCheckInterval:        100 * time.Millisecond,
		ShutdownTimeout:          cb.Timeout.D() + time.Second,
		Logger:                   queue.AsynqLogger{L: log},
		LogLevel:                 asynq.WarnLevel,
		// A receiver that answers non-2xx is expected; logged by the sender.
		IsFailure: func(error) bool { return true },
	})
	return s, nil
}

// Backoff is the retry delay of the n-th retry (n from 0): initial·2^n,
// at most max, with ±10% jitter so receivers that were down are not hit by
// every callback at the same instant.
func Backoff(initial, max time.Duration) asynq.RetryDelayFunc {
	return func(n int, _ error, _ *asynq.Task) time.Duration {
		d := max
		if n < 40 && initial<<n < max && initial<<n > 0 {
			d = initial << n
		}
		return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
	}
}

// Start begins relaying and delivering.
func (s *Service) Start() error {
	mux := asynq.NewServeMux()
	mux.Handle(TaskType, s.sender)
	if err := s.server.Start(mux); err != nil {
		return fmt.Errorf("start callback sender: %w", err)
	}
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.relay.run(ctx)
	}()
	return nil
}

// Shutdown stops the relay and waits up to the callback timeout for posts
// in progress.
func (s *Service) Shutdown() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.server.Shutdown()
	_ = s.relay.aq.Close()
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
