package queue

import (
	"net/url"
	"regexp"
	"unicode/utf8"
)

// Limits of the upstream fields of a message.
const (
	MaxSessionContext = 512  // characters
	MaxCallbackURL    = 2048 // bytes
	maxAppIDLen       = 64
)

var appIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// CheckAppID reports whether id is a valid app ID: 1-64 characters of
// A-Z a-z 0-9 . _ - starting with a letter or digit.
func CheckAppID(id string) error {
	if len(id) > maxAppIDLen || !appIDRE.MatchString(id) {
		return inputErr("invalid_app_id", "app id %q: use 1-%d characters from A-Z a-z 0-9 . _ - starting with a letter or digit", id, maxAppIDLen)
	}
	return nil
}

// CheckCallbackURL reports whether s is an absolute http(s) URL fit for
// status callbacks.
func CheckCallbackURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || len(s) > MaxCallbackURL || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return inputErr("invalid_callback_url", "callback_url %q: use an absolute http:// or https:// URL without credentials, at most %d bytes", s, MaxCallbackURL)
	}
	return nil
}

// setUpstream validates and sets the app, session context and callback URL
// of a message.
func setUpstream(m *Message, app, session, callback string) error {
	if app == "" {
		app = DefaultApp
	}
	if err := CheckAppID(app); err != nil {
		return err
	}
	if !utf8.ValidString(session) || utf8.RuneCountInString(session) > MaxSessionContext {
		return inputErr("invalid_session_context", "session_context: at most %d characters of valid UTF-8", MaxSessionContext)
	}
	if callback != "" {
		if err := CheckCallbackURL(callback); err != nil {
			return err
		}
	}
	m.AppID, m.SessionContext, m.CallbackURL = app, session, callback
	return nil
}
