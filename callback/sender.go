package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/vms-project/vms/api/sign"
	"github.com/vms-project/vms/internal/netguard"
	"github.com/vms-project/vms/queue"
)

// sender POSTs one callback task. It implements asynq.Handler.
type sender struct {
	q     *queue.Client
	keys  map[string][]byte
	hosts map[string][]string // api.apps[].callback_hosts
	// allowPrivate is api.callbacks.allow_private_hosts; http's transport
	// refuses non-public addresses at connect time unless it is set.
	allowPrivate bool
	http         *http.Client
	retryFor     time.Duration
	log          *slog.Logger
}

// ProcessTask posts the callback once. A 2xx marks it delivered; a refused
// URL or address (netguard) marks it failed at once; anything else is an
// error that asynq retries with backoff, until retry_for has passed since
// the first attempt: then it is marked failed and archived. The record's
// last_error is a short description (describe); the log has the detail.
func (s *sender) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var tk task
	if err := json.Unmarshal(t.Payload(), &tk); err != nil || tk.EventID == "" {
		return fmt.Errorf("callback task payload is not a callback (%v): %w", err, asynq.SkipRetry)
	}
	n, _ := asynq.GetRetryCount(ctx)
	attempts := n + 1
	log := s.log.With("message_id", tk.MessageID, "event_id", tk.EventID, "event", tk.Event, "attempt", attempts)
	st := queue.CallbackState{EventID: tk.EventID, URL: tk.URL, Attempts: attempts}
	key, ok := s.keys[tk.AppID]
	if !ok {
		st.State, st.LastError, st.UpdatedAt = queue.CallbackFailed, "app "+tk.AppID+" is no longer in api.apps", time.Now().UTC()
		s.record(tk, st, log)
		return fmt.Errorf("callback of app %s: app no longer configured: %w", tk.AppID, asynq.SkipRetry)
	}
	code, err := s.post(ctx, tk, key)
	st.LastHTTP, st.UpdatedAt = code, time.Now().UTC()
	if err == nil {
		st.State, st.DeliveredAt = queue.CallbackDelivered, st.UpdatedAt
		s.record(tk, st, log)
		log.Info("callback delivered", "http", code)
		return nil
	}
	// The record is read back by the app through the API: it gets a short
	// description, never an address or a dial error (those are logged).
	st.LastError = describe(code, err)
	if refused(err) {
		st.State = queue.CallbackFailed
		s.record(tk, st, log)
		log.Warn("callback refused", "err", err)
		return fmt.Errorf("callback %s: %v: %w", tk.EventID, err, asynq.SkipRetry)
	}
	if time.Since(tk.FirstAt) >= s.retryFor {
		st.State = queue.CallbackFailed
		s.record(tk, st, log)
		log.Warn("callback given up", "err", err, "retried_for", time.Since(tk.FirstAt).Round(time.Second))
		return fmt.Errorf("callback %s: %v; given up after %s: %w", tk.EventID, err, s.retryFor, asynq.SkipRetry)
	}
	st.State = queue.CallbackPending
	s.record(tk, st, log)
	log.Info("callback not delivered; will retry", "err", err)
	return err
}

// errInvalidURL marks a callback URL refused for its form (scheme,
// credentials, no host).
var errInvalidURL = errors.New("invalid callback URL")

// refused reports whether err is a refusal that retrying cannot change.
func refused(err error) bool {
	return errors.Is(err, netguard.ErrAddressNotAllowed) || errors.Is(err, netguard.ErrHostNotAllowed) || errors.Is(err, errInvalidURL)
}

// describe is what the record says of a failed attempt: "HTTP 503",
// "timed out", "connection failed", "refused: address not allowed", ...
func describe(code int, err error) string {
	switch {
	case code >= 300 && code <= 399:
		return fmt.Sprintf("HTTP %d (redirects are not followed)", code)
	case code != 0:
		return fmt.Sprintf("HTTP %d", code)
	case errors.Is(err, errInvalidURL):
		return "refused: invalid URL"
	}
	return netguard.Describe(err)
}

// post sends the signed report once and returns the HTTP status.
func (s *sender) post(ctx context.Context, tk task, key []byte) (int, error) {
	// Checked again here: the URL may have been enqueued by a client that
	// does not check (queue.Client) or before the config changed.
	if err := netguard.CheckURL(tk.URL, s.allowPrivate, s.hosts[tk.AppID]); err != nil {
		if !errors.Is(err, netguard.ErrAddressNotAllowed) && !errors.Is(err, netguard.ErrHostNotAllowed) {
			err = fmt.Errorf("%w: %v", errInvalidURL, err)
		}
		return 0, fmt.Errorf("POST %s: %w", redactURL(tk.URL), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tk.URL, bytes.NewReader(tk.Body))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errInvalidURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vms-callback/1")
	req.Header.Set(sign.HeaderEventID, tk.EventID)
	sign.Request(req, tk.AppID, key, tk.Body, time.Now())
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", redactURL(tk.URL), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("POST %s: receiver answered %s", redactURL(tk.URL), resp.Status)
	}
	return resp.StatusCode, nil
}

// record writes the delivery state into the message record, on its own
// context so a stopping process still records what it did.
func (s *sender) record(tk task, st queue.CallbackState, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.q.SetCallbackState(ctx, tk.MessageID, tk.Event, st); err != nil {
		log.Warn("record callback state", "err", err)
	}
}
