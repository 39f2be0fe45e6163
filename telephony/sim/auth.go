package sim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// authorize runs the "challenge" scenario on one INVITE. Without an
// Authorization header it sends a 401 digest challenge and waits for the
// caller's retry, which continues the same CallRecord; it returns false.
// With one, it returns true when the credentials answer the outstanding
// challenge and otherwise sends 403 and returns false.
func (r *callRun) authorize() bool {
	s, callID := r.s, r.c.rec.CallID
	hdr := r.req.GetHeader("Authorization")
	if hdr == nil {
		r.challenge()
		return false
	}

	s.mu.Lock()
	nonce := s.nonces[callID]
	delete(s.nonces, callID) // a nonce answers one INVITE
	s.mu.Unlock()

	if nonce == "" || !s.checkDigest(hdr.Value(), nonce) {
		r.log.Info("digest authentication failed")
		r.final(sip.StatusForbidden, "Forbidden")
		return false
	}
	return true
}

// challenge sends 401 with a fresh nonce and waits for the retry.
func (r *callRun) challenge() {
	s, c := r.s, r.c
	nonce := newNonce()
	s.mu.Lock()
	s.nonces[c.rec.CallID] = nonce
	s.mu.Unlock()

	chal := s.digestChallenge(nonce)
	wait := make(chan struct{})
	c.mu.Lock()
	c.rec.FinalCode = sip.StatusUnauthorized
	c.challenged = wait
	c.mu.Unlock()

	res := sip.NewResponseFromRequest(r.dlg.InviteRequest, sip.StatusUnauthorized, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
	if err := r.tx.Respond(res); err != nil {
		r.log.Debug("respond 401", "error", err)
	}

	t := time.NewTimer(authRetryWait)
	defer t.Stop()
	select {
	case <-wait:
		return // the authenticated INVITE owns the call now
	case <-t.C:
	case <-s.ctx.Done():
	}
	if c.resumeChallenged() { // nobody took it: end it here
		r.end(sip.StatusUnauthorized)
	}
}

func (s *Simulator) digestChallenge(nonce string) *digest.Challenge {
	return &digest.Challenge{
		Realm:     s.cfg.Realm,
		Nonce:     nonce,
		Algorithm: "MD5",
		QOP:       []string{"auth"},
	}
}

// checkDigest verifies an Authorization header value against the nonce.
func (s *Simulator) checkDigest(value, nonce string) bool {
	creds, err := digest.ParseCredentials(value)
	if err != nil || creds.Nonce != nonce || creds.Username != s.cfg.Username || creds.Realm != s.cfg.Realm {
		return false
	}
	chal := s.digestChallenge(nonce)
	if creds.QOP == "" {
		chal.QOP = nil // RFC 2069 style answer
	}
	want, err := digest.Digest(chal, digest.Options{
		Method:   "INVITE",
		URI:      creds.URI,
		Username: s.cfg.Username,
		Password: s.cfg.Password,
		Cnonce:   creds.Cnonce,
		Count:    creds.Nc,
	})
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want.Response), []byte(creds.Response)) == 1
}

func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
