// Package api is the upstream HTTP API of vms: JSON over HTTP, every
// request signed with the app's key (package sign), per-app rate limits,
// and errors with stable machine codes. `vms api` runs it, together with the
// status callback relay and sender (package callback).
package api

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/policy"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/templates"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API (api/openapi.json).
func OpenAPI() []byte { return openAPI }

// app is a configured app with its key resolved.
type app struct {
	config.App
	key []byte
}

// Server serves the API. Build it with New.
type Server struct {
	cfg       *config.Config
	rdb       redis.UniversalClient
	q         *queue.Client
	templates templates.Registry
	policy    *policy.Engine
	apps      map[string]*app
	limiter   rateLimiter
	skew      time.Duration
	maxBody   int64
	log       *slog.Logger
	now       func() time.Time
	mux       *http.ServeMux
}

// New returns a Server for cfg's apps. It resolves every app key (from
// key, key_env or key_file) and fails naming the app whose key is missing.
func New(cfg *config.Config, rdb redis.UniversalClient, q *queue.Client, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.API.Apps) == 0 {
		return nil, errors.New("api.apps is empty: configure at least one app (id, key_env, rate_limit) to serve the API")
	}
	s := &Server{cfg: cfg, rdb: rdb, q: q, templates: cfg.TemplateRegistry(), apps: map[string]*app{},
		policy:  policy.FromConfig(cfg, rdb, log),
		limiter: rateLimiter{rdb}, skew: cfg.API.TimestampSkew.D(), maxBody: cfg.API.MaxBodyBytes,
		log: log, now: time.Now}
	for _, a := range cfg.API.Apps {
		k, err := a.ResolveKey()
		if err != nil {
			return nil, err
		}
		s.apps[a.ID] = &app{App: a, key: k}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/calls/code", s.authenticate(s.sendCode))
	mux.HandleFunc("POST /v1/calls/tts", s.authenticate(s.sendTTS))
	mux.HandleFunc("GET /v1/calls/{message_id}", s.authenticate(s.getCall))
	mux.HandleFunc("POST /v1/calls/{message_id}/cancel", s.authenticate(s.cancelCall))
	mux.HandleFunc("GET /v1/templates", s.authenticate(s.listTemplates))
	mux.HandleFunc("GET /v1/templates/{template_id}", s.authenticate(s.getTemplate))
	mux.HandleFunc("POST /v1/suppressions", s.authenticate(s.addSuppression))
	mux.HandleFunc("GET /v1/suppressions", s.authenticate(s.listSuppressions))
	mux.HandleFunc("GET /v1/suppressions/{number}", s.authenticate(s.getSuppression))
	mux.HandleFunc("DELETE /v1/suppressions/{number}", s.authenticate(s.removeSuppression))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := rdb.Ping(r.Context()).Err(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "redis unreachable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux = mux
	return s, nil
}

// ServeHTTP implements http.Handler. Requests no route matches get a JSON
// 404 or 405 rather than the mux's plain text.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The mux would answer a path with empty or dot segments ("//v1/...",
	// "/v1/calls/../x") with an HTML redirect to its cleaned form, which a
	// signed request cannot follow (the signature covers the path sent).
	if p := r.URL.Path; !strings.HasPrefix(p, "/") || (path.Clean(p) != p && path.Clean(p)+"/" != p) {
		writeError(w, CodeNotFound, fmt.Sprintf("no endpoint %s %s: send the path without empty or dot segments (see /openapi.json)", r.Method, r.URL.Path))
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, p := s.mux.Handler(r2); p != "" && m != r.Method {
				writeError(w, CodeMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, m))
				return
			}
		}
		writeError(w, CodeNotFound, fmt.Sprintf("no endpoint %s %s: see /openapi.json", r.Method, r.URL.Path))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// TLS reports whether Serve serves HTTPS (api.tls_cert and api.tls_key set).
func (s *Server) TLS() bool { return s.cfg.API.TLSCert != "" }

// Serve answers on ln until ctx ends, then shuts down gracefully (requests
// in progress get up to 10 s). With api.tls_cert and api.tls_key it serves
// HTTPS, TLS 1.2 or later; plain HTTP to it is refused.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	if s.TLS() {
		cert, err := tls.LoadX509KeyPair(s.cfg.API.TLSCert, s.cfg.API.TLSKey)
		if err != nil {
			return fmt.Errorf("api.tls_cert %s / api.tls_key %s: %w", s.cfg.API.TLSCert, s.cfg.API.TLSKey, err)
		}
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	var err error
	if hs.TLSConfig != nil {
		err = hs.ServeTLS(ln, "", "") // the certificate is in TLSConfig
	} else {
		err = hs.Serve(ln)
	}
	stop()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
