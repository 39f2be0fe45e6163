package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/vms-project/vms/api/sign"
)

var nonceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

type ctxKey struct{}

// appFrom returns the authenticated app of a request.
func appFrom(ctx context.Context) *app { return ctx.Value(ctxKey{}).(*app) }

// authenticate checks the signature, timestamp and nonce of a request and
// the app's rate limit, then calls next with the app in the context and the
// body read (and size-limited) into body.
func (s *Server) authenticate(next func(w http.ResponseWriter, r *http.Request, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		appID := r.Header.Get(sign.HeaderAppID)
		tsText := r.Header.Get(sign.HeaderTimestamp)
		nonce := r.Header.Get(sign.HeaderNonce)
		sig := r.Header.Get(sign.HeaderSignature)
		if appID == "" || tsText == "" || nonce == "" || sig == "" {
			writeError(w, CodeSignatureInvalid, fmt.Sprintf("sign every request: set %s, %s, %s and %s (see the README, HTTP API)",
				sign.HeaderAppID, sign.HeaderTimestamp, sign.HeaderNonce, sign.HeaderSignature))
			return
		}
		a, ok := s.apps[appID]
		if !ok {
			writeError(w, CodeSignatureInvalid, "unknown app id or wrong signature")
			return
		}
		ts, err := strconv.ParseInt(tsText, 10, 64)
		if err != nil {
			writeError(w, CodeTimestampSkew, fmt.Sprintf("%s %q: use the current time in Unix seconds", sign.HeaderTimestamp, tsText))
			return
		}
		if d := s.now().Sub(time.Unix(ts, 0)); d > s.skew || d < -s.skew {
			writeError(w, CodeTimestampSkew, fmt.Sprintf("%s is %s off the server's clock: at most %s is accepted; sync your clock (NTP)",
				sign.HeaderTimestamp, d.Round(time.Second).Abs(), s.skew))
			return
		}
		if !nonceRE.MatchString(nonce) {
			writeError(w, CodeSignatureInvalid, fmt.Sprintf("%s: use 16-64 random characters from A-Z a-z 0-9 _ -", sign.HeaderNonce))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, CodeBodyTooLarge, fmt.Sprintf("request body over %d bytes", s.maxBody))
			return
		} else if err != nil {
			writeError(w, CodeInvalidRequest, "could not read the request body: "+err.Error())
			return
		}
		if !sign.Valid(a.key, sig, r.Method, r.URL.RequestURI(), tsText, nonce, body) {
			writeError(w, CodeSignatureInvalid, "unknown app id or wrong signature: sign METHOD, path, timestamp, nonce and the SHA-256 of the exact body with the app key")
			return
		}
		// Only a correctly signed request may use up a nonce. Nonces live
		// twice the skew: a timestamp accepted now stays acceptable that long.
		fresh, err := s.rdb.SetNX(r.Context(), "vms:api:nonce:{"+appID+"}:"+nonce, 1, 2*s.skew).Result()
		if err != nil {
			s.writeErr(w, r, fmt.Errorf("nonce check: %w", err))
			return
		}
		if !fresh {
			writeError(w, CodeNonceReused, fmt.Sprintf("%s was already used: use a fresh random nonce for every request", sign.HeaderNonce))
			return
		}
		ok, wait, err := s.limiter.allow(r.Context(), appID, a.RateLimit)
		if err != nil {
			s.writeErr(w, r, fmt.Errorf("rate limit: %w", err))
			return
		}
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeError(w, CodeRateLimited, fmt.Sprintf("app %s is limited to %g requests per second: retry after %s", appID, a.RateLimit, wait.Round(time.Millisecond)))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, a)), body)
	}
}
