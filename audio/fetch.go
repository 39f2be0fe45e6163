package audio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vms-project/vms/internal/netguard"
)

// FetchOptions configures a Fetcher. Zero values take the defaults shown.
type FetchOptions struct {
	// Timeout bounds one HTTP attempt, body included (default 15 s).
	Timeout time.Duration
	// MaxBytes refuses larger responses (default 20 MiB).
	MaxBytes int64
	// MaxRedirects is how many redirects one request may follow (default 3; -1: none).
	MaxRedirects int
	// Retries is how many times a failed attempt is retried: network errors, timeouts,
	// 408, 429 and 5xx (default 2; -1: none). Other statuses fail at once.
	Retries int
	// Backoff is the delay before the first retry, doubled for each next one, with
	// ±25% jitter (default 500 ms).
	Backoff time.Duration
	// Revalidate is how long a fetched clip is used without asking the server again
	// (default 0: every Fetch sends a conditional request, answered by 304 Not
	// Modified while the clip is unchanged).
	Revalidate time.Duration
	// CacheDir keeps fetched clips and their validators (ETag, Last-Modified) across
	// restarts; empty keeps them in memory only.
	CacheDir string
	// AllowPrivateHosts lets fetches connect to loopback, private, link-local
	// and other non-public addresses (audio.fetch.allow_private_hosts). Off,
	// every connection's resolved address is checked when it is made
	// (netguard), so a recording URL, or a redirect, or a name rebound in
	// DNS, cannot reach inside the network.
	AllowPrivateHosts bool
	// Transport overrides the HTTP transport (tests); nil uses a clone of
	// http.DefaultTransport with the address check of AllowPrivateHosts.
	Transport http.RoundTripper
	// Logger receives retries (warnings); nil discards.
	Logger *slog.Logger
}

// Fetcher downloads recordings over http(s) with timeouts, a size limit, a redirect
// limit, a content-type check, conditional requests (If-None-Match / If-Modified-Since)
// so an unchanged clip is not downloaded again, and retries with exponential backoff.
// It is safe for concurrent use.
type Fetcher struct {
	o      FetchOptions
	client *http.Client
	log    *slog.Logger

	mu    sync.Mutex
	known map[string]*fetched // by URL
}

// fetched is what the Fetcher remembers of a URL.
type fetched struct {
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	ContentType  string    `json:"content_type,omitempty"`
	Checked      time.Time `json:"checked"`
	body         []byte
}

// FetchResult is a fetched recording.
type FetchResult struct {
	Body        []byte
	ContentType string
	// NotModified is true when the server answered 304 (or Revalidate had not
	// elapsed) and the stored copy was used.
	NotModified bool
}

// FetchError is the error of a failed Fetch: the URL (with any query values and
// password hidden), the HTTP status if one came, and why.
type FetchError struct {
	URL    string
	Status int
	Err    error
}

func (e *FetchError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("fetch %s: HTTP %d: %v", e.URL, e.Status, e.Err)
	}
	return fmt.Sprintf("fetch %s: %v", e.URL, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// NewFetcher returns a Fetcher with o's settings.
func NewFetcher(o FetchOptions) (*Fetcher, error) {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 20 << 20
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = 3
	}
	if o.Retries == 0 {
		o.Retries = 2
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.CacheDir != "" {
		if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("audio: fetch cache: %w: make %s writable", err, o.CacheDir)
		}
	}
	tr := o.Transport
	if tr == nil {
		tr = netguard.Transport(o.AllowPrivateHosts)
	}
	f := &Fetcher{o: o, log: o.Logger, known: map[string]*fetched{}}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.client = &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > max(o.MaxRedirects, 0) {
				return fmt.Errorf("more than %d redirects", max(o.MaxRedirects, 0))
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to a %s: URL", req.URL.Scheme)
			}
			return nil
		},
	}
	return f, nil
}

// errPermanent marks a failure that retrying cannot fix.
type errPermanent struct{ error }

func (e errPermanent) Unwrap() error { return e.error }

// Fetch returns the recording at rawURL (http or https): the stored copy when the
// server says it has not changed, else the new body. Errors are *FetchError.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (FetchResult, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return FetchResult{}, &FetchError{URL: RedactURL(rawURL), Err: errors.New("not an http(s) URL")}
	}
	prev := f.lookup(rawURL)
	if prev != nil && f.o.Revalidate > 0 && time.Since(prev.Checked) < f.o.Revalidate {
		return FetchResult{Body: prev.body, ContentType: prev.ContentType, NotModified: true}, nil
	}
	var last error
	var status int
	for attempt := 0; ; attempt++ {
		res, st, err := f.attempt(ctx, rawURL, prev)
		if err == nil {
			return res, nil
		}
		last, status = err, st
		var perm errPermanent
		if errors.As(err, &perm) || attempt >= max(f.o.Retries, 0) || ctx.Err() != nil {
			break
		}
		delay := f.o.Backoff << attempt
		delay = delay*3/4 + rand.N(delay/2+1)
		f.log.Warn("audio: fetch failed, retrying", "url", RedactURL(rawURL), "attempt", attempt+1, "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return FetchResult{}, &FetchError{URL: RedactURL(rawURL), Err: ctx.Err()}
		case <-time.After(delay):
		}
	}
	if ctx.Err() != nil {
		last = fmt.Errorf("%w (last attempt: %v)", ctx.Err(), last)
	} else if f.o.Retries > 0 {
		var perm errPermanent
		if !errors.As(last, &perm) {
			last = fmt.Errorf("%w (after %d attempts)", last, f.o.Retries+1)
		}
	}
	return FetchResult{}, &FetchError{URL: RedactURL(rawURL), Status: status, Err: last}
}

func (f *Fetcher) attempt(ctx context.Context, rawURL string, prev *fetched) (FetchResult, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return FetchResult{}, 0, errPermanent{err}
	}
	req.Header.Set("Accept", "audio/wav, audio/mpeg, audio/flac, audio/*;q=0.9, application/octet-stream;q=0.5")
	if prev != nil {
		if prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		// *url.Error repeats the full URL, query secrets included: keep only its cause
		// (FetchError names the redacted URL).
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				err = fmt.Errorf("no complete answer within %s: %w (raise audio.fetch.timeout if the server is slow)", f.o.Timeout, ue.Err)
			} else {
				err = ue.Err
			}
		}
		if errors.Is(err, netguard.ErrAddressNotAllowed) {
			f.log.Warn("audio: fetch refused", "url", RedactURL(rawURL), "err", err)
			return FetchResult{}, 0, errPermanent{fmt.Errorf("refused: %w: the URL (or a redirect) leads to a loopback, private or other non-public address; set audio.fetch.allow_private_hosts: true if the recording is served internally on purpose", netguard.ErrAddressNotAllowed)}
		}
		if strings.Contains(err.Error(), "redirect") {
			return FetchResult{}, 0, errPermanent{err}
		}
		return FetchResult{}, 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && prev != nil:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		f.remember(rawURL, &fetched{ETag: prev.ETag, LastModified: prev.LastModified, ContentType: prev.ContentType,
			Checked: time.Now(), body: prev.body}, false)
		return FetchResult{Body: prev.body, ContentType: prev.ContentType, NotModified: true}, resp.StatusCode, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return FetchResult{}, resp.StatusCode, fmt.Errorf("%s", resp.Status)
	case resp.StatusCode != http.StatusOK:
		return FetchResult{}, resp.StatusCode, errPermanent{fmt.Errorf("%s: check the URL and that the file is public or the link is still valid", resp.Status)}
	}
	ct := resp.Header.Get("Content-Type")
	if err := checkContentType(ct); err != nil {
		return FetchResult{}, resp.StatusCode, errPermanent{err}
	}
	if resp.ContentLength > f.o.MaxBytes {
		return FetchResult{}, resp.StatusCode, errPermanent{fmt.Errorf("%d bytes is more than the limit of %d: raise audio.fetch.max_bytes or shorten the recording", resp.ContentLength, f.o.MaxBytes)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.o.MaxBytes+1))
	if err != nil {
		return FetchResult{}, resp.StatusCode, fmt.Errorf("reading the body: %w", err)
	}
	if int64(len(body)) > f.o.MaxBytes {
		return FetchResult{}, resp.StatusCode, errPermanent{fmt.Errorf("more than the limit of %d bytes: raise audio.fetch.max_bytes or shorten the recording", f.o.MaxBytes)}
	}
	f.remember(rawURL, &fetched{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"),
		ContentType: ct, Checked: time.Now(), body: body}, true)
	return FetchResult{Body: body, ContentType: ct}, resp.StatusCode, nil
}

// checkContentType accepts audio/*, octet-stream and a missing type (the decoder then
// sniffs the bytes); it refuses text, HTML, JSON and the like, which are error pages.
func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("unreadable Content-Type %q", ct)
	}
	switch {
	case strings.HasPrefix(mt, "audio/"), mt == "application/octet-stream", mt == "binary/octet-stream":
		return nil
	}
	return fmt.Errorf("Content-Type %s is not audio: the URL must serve the recording itself (audio/wav, audio/mpeg, audio/flac)", mt)
}

func (f *Fetcher) lookup(rawURL string) *fetched {
	f.mu.Lock()
	e := f.known[rawURL]
	f.mu.Unlock()
	if e != nil || f.o.CacheDir == "" {
		return e
	}
	base := f.cachePath(rawURL)
	meta, err1 := os.ReadFile(base + ".json")
	body, err2 := os.ReadFile(base + ".body")
	if err1 != nil || err2 != nil {
		return nil
	}
	e = &fetched{}
	if json.Unmarshal(meta, e) != nil || (e.ETag == "" && e.LastModified == "") {
		return nil
	}
	e.body = body
	e.Checked = time.Time{} // revalidate after a restart
	f.mu.Lock()
	f.known[rawURL] = e
	f.mu.Unlock()
	return e
}

// remember keeps e for rawURL, in memory and (when the body is new) on disk. Without
// a validator there is nothing to ask the server with, so nothing is kept on disk.
func (f *Fetcher) remember(rawURL string, e *fetched, newBody bool) {
	f.mu.Lock()
	f.known[rawURL] = e
	f.mu.Unlock()
	if f.o.CacheDir == "" || !newBody || (e.ETag == "" && e.LastModified == "") {
		return
	}
	base := f.cachePath(rawURL)
	meta, _ := json.Marshal(e)
	if err := writeAtomic(base+".body", e.body); err == nil {
		if err := writeAtomic(base+".json", meta); err != nil {
			f.log.Warn("audio: cannot keep fetched clip", "err", err)
		}
	} else {
		f.log.Warn("audio: cannot keep fetched clip", "err", err)
	}
}

func (f *Fetcher) cachePath(rawURL string) string {
	h := sha256.Sum256([]byte(rawURL))
	return filepath.Join(f.o.CacheDir, hex.EncodeToString(h[:]))
}

// writeAtomic writes b to path through a temporary file and a rename.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// RedactURL returns u with its password and query values replaced by "***", so a
// signed or tokenized link can appear in errors and logs.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"***"}
		}
		u.RawQuery = strings.ReplaceAll(q.Encode(), "%2A%2A%2A", "***")
	}
	return u.String()
}
