// Package httptts is a tts.Engine that fronts a self-hosted or cloud speech service
// over HTTP: it POSTs a JSON body built from a template to a configured URL, with
// configured headers, and accepts WAV, MP3 or FLAC back (decoded by package audio).
package httptts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vms-project/vms/audio"
	"github.com/vms-project/vms/tts"
)

// DefaultBody is the body template used when Config.Body is empty.
const DefaultBody = `{"text": {{text}}, "voice": {{voice}}, "rate": {{rate}}, "format": {{format}}}`

// Config configures an Engine.
type Config struct {
	// Name identifies the engine in prompts, cache keys and logs (e.g. "cloud").
	Name string
	// URL receives the POST.
	URL string
	// Headers are sent with every request (e.g. Authorization). Their values are
	// never logged nor part of cache keys.
	Headers map[string]string
	// Body is a JSON template. {{text}}, {{voice}} and {{format}} become JSON strings
	// (quotes included, escaped), {{rate}} a JSON number (1 is normal speed). Empty
	// means DefaultBody.
	Body string
	// Format is what {{format}} says: "wav" (default) or "mp3".
	Format string
	// Timeout bounds one attempt, audio download included (default 30 s).
	Timeout time.Duration
	// Retries is how many times a failed attempt is retried: network errors, timeouts,
	// 429 and 5xx (default 2; -1: none).
	Retries int
	// Backoff is the first retry delay, doubled each time, ±25% (default 500 ms).
	Backoff time.Duration
	// MaxBytes refuses larger audio answers (default 32 MiB).
	MaxBytes int64
	// MaxDuration refuses longer audio (default 120 s).
	MaxDuration time.Duration
	// Transport overrides the HTTP transport (nil: a clone of the default).
	Transport http.RoundTripper
	// Logger receives retries; nil discards.
	Logger *slog.Logger
}

// Engine is an HTTP speech service as a tts.Engine and tts.RateEngine. It is safe for
// concurrent use.
type Engine struct {
	c      Config
	client *http.Client
	log    *slog.Logger
}

var (
	_ tts.RateEngine = (*Engine)(nil)
	_ tts.Configurer = (*Engine)(nil)
)

// New checks c and returns an Engine.
func New(c Config) (*Engine, error) {
	if c.Name == "" {
		return nil, errors.New("httptts: engine without a name")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("httptts %s: url %q: give the http(s) URL of the speech service", c.Name, audio.RedactURL(c.URL))
	}
	if c.Body == "" {
		c.Body = DefaultBody
	}
	if c.Format == "" {
		c.Format = "wav"
	}
	if c.Format != "wav" && c.Format != "mp3" {
		return nil, fmt.Errorf("httptts %s: format %q: use wav or mp3", c.Name, c.Format)
	}
	if _, err := buildBody(c.Body, "test \"quoted\" 文字", "voice", 1, c.Format); err != nil {
		return nil, fmt.Errorf("httptts %s: body template: %w", c.Name, err)
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	if c.Backoff <= 0 {
		c.Backoff = 500 * time.Millisecond
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 32 << 20
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = audio.DefaultMaxDuration
	}
	tr := c.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	e := &Engine{c: c, client: &http.Client{Transport: tr, Timeout: c.Timeout}, log: c.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

// Name implements tts.Engine.
func (e *Engine) Name() string { return e.c.Name }

// Config implements tts.Configurer: the URL, body template, format and header names
// (not their values, which hold secrets).
func (e *Engine) Config() string {
	return fmt.Sprintf("url=%s;body=%s;format=%s;headers=%s", e.c.URL, e.c.Body, e.c.Format,
		strings.Join(slices.Sorted(maps.Keys(e.c.Headers)), ","))
}

// Synthesize implements tts.Engine at the normal rate.
func (e *Engine) Synthesize(ctx context.Context, text, voice string) ([]int16, int, error) {
	return e.SynthesizeRate(ctx, text, voice, 1)
}

// errPermanent marks an answer that retrying cannot fix.
type errPermanent struct{ error }

func (p errPermanent) Unwrap() error { return p.error }

// SynthesizeRate implements tts.RateEngine.
func (e *Engine) SynthesizeRate(ctx context.Context, text, voice string, rate float64) ([]int16, int, error) {
	body, err := buildBody(e.c.Body, text, voice, rate, e.c.Format)
	if err != nil {
		return nil, 0, fmt.Errorf("httptts %s: %w", e.c.Name, err)
	}
	for attempt := 0; ; attempt++ {
		pcm, sr, err := e.attempt(ctx, body, voice)
		if err == nil {
			return pcm, sr, nil
		}
		var perm errPermanent
		if errors.As(err, &perm) || attempt >= max(e.c.Retries, 0) || ctx.Err() != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
			} else if attempt > 0 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return nil, 0, fmt.Errorf("httptts %s (%s): %w", e.c.Name, audio.RedactURL(e.c.URL), err)
		}
		delay := e.c.Backoff << attempt
		delay = delay*3/4 + rand.N(delay/2+1)
		e.log.Warn("httptts: synthesis failed, retrying", "engine", e.c.Name, "attempt", attempt+1, "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("httptts %s: %w", e.c.Name, ctx.Err())
		case <-time.After(delay):
		}
	}
}

func (e *Engine) attempt(ctx context.Context, body []byte, voice string) ([]int16, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.c.URL, bytes.NewReader(body))
	if err != nil {
		return nil, 0, errPermanent{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "audio/wav, audio/mpeg")
	for k, v := range e.c.Headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return nil, 0, fmt.Errorf("no complete answer within %s (raise the engine's timeout if the service is slow): %w", e.c.Timeout, ue.Err)
			}
			return nil, 0, ue.Err
		}
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, e.c.MaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return nil, 0, fmt.Errorf("HTTP %s: %s", resp.Status, snippet(data))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, 0, errPermanent{fmt.Errorf("HTTP %s: check the engine's headers (credentials): %s", resp.Status, snippet(data))}
	case resp.StatusCode != http.StatusOK:
		if strings.Contains(strings.ToLower(string(data)), "voice") {
			return nil, 0, errPermanent{fmt.Errorf("%w %q? HTTP %s: %s", tts.ErrUnknownVoice, voice, resp.Status, snippet(data))}
		}
		return nil, 0, errPermanent{fmt.Errorf("HTTP %s: %s", resp.Status, snippet(data))}
	}
	if int64(len(data)) > e.c.MaxBytes {
		return nil, 0, errPermanent{fmt.Errorf("answer larger than %d bytes: split the text", e.c.MaxBytes)}
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch mt {
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/mpeg", "audio/mp3", "audio/flac", "application/octet-stream", "":
	default:
		return nil, 0, errPermanent{fmt.Errorf("answer is %q, not audio/wav or audio/mpeg: %s", ct, snippet(data))}
	}
	d, err := audio.Decode(data, e.c.MaxDuration)
	if err != nil {
		return nil, 0, errPermanent{fmt.Errorf("answer (%s, %d bytes): %w", ct, len(data), err)}
	}
	return d.PCM, d.Rate, nil
}

// buildBody fills the template and checks that the result is JSON.
func buildBody(tmpl, text, voice string, rate float64, format string) ([]byte, error) {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	out := strings.NewReplacer(
		"{{text}}", q(text), "{{voice}}", q(voice), "{{format}}", q(format),
		"{{rate}}", strconv.FormatFloat(rate, 'f', -1, 64),
	).Replace(tmpl)
	if !json.Valid([]byte(out)) {
		return nil, fmt.Errorf("not valid JSON once filled in (%.80s): placeholders {{text}}, {{voice}}, {{format}} already include their quotes", out)
	}
	return []byte(out), nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconvQuote(s)
}

func strconvQuote(s string) string { return strconv.Quote(s) }
