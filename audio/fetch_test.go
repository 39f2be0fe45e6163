package audio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vms-project/vms/internal/netguard"
	"github.com/vms-project/vms/internal/testutil"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// clipServer serves body at /clip.wav with an ETag and/or Last-Modified, answering
// conditional requests with 304, and counts full downloads.
type clipServer struct {
	body      atomic.Pointer[[]byte]
	etag      bool
	lastMod   bool
	downloads atomic.Int32
	requests  atomic.Int32
}

func (s *clipServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	b := *s.body.Load()
	tag := `"` + SHA256(b)[:16] + `"`
	mod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(len(b)) * time.Second).Format(http.TimeFormat)
	if s.etag {
		w.Header().Set("ETag", tag)
		if r.Header.Get("If-None-Match") == tag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if s.lastMod {
		w.Header().Set("Last-Modified", mod)
		if !s.etag && r.Header.Get("If-Modified-Since") == mod {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	s.downloads.Add(1)
	w.Header().Set("Content-Type", "audio/wav")
	w.Write(b)
}

func (s *clipServer) set(b []byte) { s.body.Store(&b) }

func TestFetchConditionalRequests(t *testing.T) {
	for _, tc := range []struct {
		name          string
		etag, lastMod bool
	}{{"etag", true, false}, {"last-modified", false, true}, {"both", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &clipServer{etag: tc.etag, lastMod: tc.lastMod}
			srv.set([]byte("RIFF-version-one"))
			ts := httptest.NewServer(srv)
			defer ts.Close()
			dir := t.TempDir()
			f, _ := NewFetcher(FetchOptions{AllowPrivateHosts: true, CacheDir: dir})
			url := ts.URL + "/clip.wav"
			for i := range 3 {
				res, err := f.Fetch(testCtx(t), url)
				if err != nil {
					t.Fatal(err)
				}
				if string(res.Body) != "RIFF-version-one" || res.NotModified != (i > 0) {
					t.Fatalf("fetch %d: %q not-modified=%v", i, res.Body, res.NotModified)
				}
			}
			if d, r := srv.downloads.Load(), srv.requests.Load(); d != 1 || r != 3 {
				t.Errorf("%d downloads in %d requests, want 1 in 3", d, r)
			}
			// A restarted worker (new Fetcher, same directory) still asks conditionally.
			f2, _ := NewFetcher(FetchOptions{AllowPrivateHosts: true, CacheDir: dir})
			if res, err := f2.Fetch(testCtx(t), url); err != nil || !res.NotModified || string(res.Body) != "RIFF-version-one" {
				t.Errorf("after restart: %v, not-modified=%v", err, res.NotModified)
			}
			// A changed clip is downloaded again.
			srv.set([]byte("RIFF-version-two!"))
			res, err := f.Fetch(testCtx(t), url)
			if err != nil || res.NotModified || string(res.Body) != "RIFF-version-two!" {
				t.Errorf("changed clip: %q, %v", res.Body, err)
			}
			if d := srv.downloads.Load(); d != 2 {
				t.Errorf("%d downloads, want 2", d)
			}
		})
	}
}

func TestFetchRevalidateWindow(t *testing.T) {
	srv := &clipServer{etag: true}
	srv.set([]byte("RIFF"))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	f, _ := NewFetcher(FetchOptions{AllowPrivateHosts: true, Revalidate: time.Hour})
	for range 3 {
		if _, err := f.Fetch(testCtx(t), ts.URL); err != nil {
			t.Fatal(err)
		}
	}
	if r := srv.requests.Load(); r != 1 {
		t.Errorf("%d requests within the revalidation window, want 1", r)
	}
}

func TestFetchRetriesWithBackoff(t *testing.T) {
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "audio/mpeg")
		w.Write([]byte("ID3 ok"))
	}))
	defer ts.Close()
	f, _ := NewFetcher(FetchOptions{AllowPrivateHosts: true, Retries: 2, Backoff: 50 * time.Millisecond})
	start := time.Now()
	res, err := f.Fetch(testCtx(t), ts.URL+"/a.mp3")
	if err != nil || string(res.Body) != "ID3 ok" {
		t.Fatalf("%q, %v", res.Body, err)
	}
	// Backoff 50 ms then 100 ms, ±25%.
	if took := time.Since(start); took < 110*time.Millisecond {
		t.Errorf("3 attempts took %s: no backoff", took)
	}
	if n.Load() != 3 {
		t.Errorf("%d attempts, want 3", n.Load())
	}
	// Out of retries: the error names the URL, the status and the attempts.
	n.Store(-10)
	_, err = f.Fetch(testCtx(t), ts.URL+"/a.mp3")
	var fe *FetchError
	if !errors.As(err, &fe) || fe.Status != 503 || !strings.Contains(err.Error(), ts.URL+"/a.mp3") || !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("error %v", err)
	}
}

func TestFetchRefusals(t *testing.T) {
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<html>login</html>"))
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { hits.Add(1); http.NotFound(w, r) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "audio/wav")
		w.Write(bytes.Repeat([]byte{1}, 5000))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "audio/wav")
		for range 5 {
			w.Write(bytes.Repeat([]byte{1}, 1000))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/hop/", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/hop/"), "%d", &n)
		if n == 0 {
			w.Header().Set("Content-Type", "audio/wav")
			w.Write([]byte("RIFF"))
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	f, _ := NewFetcher(FetchOptions{AllowPrivateHosts: true, MaxBytes: 4000, MaxRedirects: 3, Retries: 1, Backoff: 10 * time.Millisecond, Timeout: 300 * time.Millisecond})

	for _, tc := range []struct {
		path, want string
		attempts   int32
	}{
		{"/html", "Content-Type text/html is not audio", 1},
		{"/missing", "HTTP 404", 1},
		{"/big", "more than the limit of 4000", 1},
		{"/big-chunked", "more than the limit of 4000", 1},
		{"/slow", "no complete answer within 300ms", 2},
		{"/hop/5", "more than 3 redirects", 0},
		{"/other?token=s3cr3t&x=1", "HTTP 404", 0},
		{"/hop/5?token=s3cr3t", "more than 3 redirects", 0},
	} {
		hits.Store(0)
		_, err := f.Fetch(testCtx(t), ts.URL+tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: the error shows a query secret: %v", tc.path, err)
		}
		if !strings.Contains(err.Error(), ts.URL) {
			t.Errorf("%s: the error does not name the URL: %v", tc.path, err)
		}
		if tc.attempts > 0 && hits.Load() != tc.attempts {
			t.Errorf("%s: %d attempts, want %d", tc.path, hits.Load(), tc.attempts)
		}
		t.Logf("%s: %v", tc.path, err)
	}
	if res, err := f.Fetch(testCtx(t), ts.URL+"/hop/3"); err != nil || string(res.Body) != "RIFF" {
		t.Errorf("3 redirects: %v", err)
	}
	if _, err := f.Fetch(testCtx(t), "ftp://example.invalid/a.wav"); err == nil {
		t.Error("ftp URL accepted")
	}
}

// TestFetchRefusesInsideAddresses: without AllowPrivateHosts (the default,
// audio.fetch.allow_private_hosts: false) a recording URL cannot reach a
// loopback or other inside address, whether it names the address, a name
// that resolves to it (checked when connecting), or redirects there. The
// refusal is not retried.
func TestFetchRefusesInsideAddresses(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "audio/wav")
		w.Write([]byte("RIFF"))
	}))
	defer ts.Close()
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	f, _ := NewFetcher(FetchOptions{Retries: 2, Backoff: time.Second})
	// A public-looking name that DNS resolves to 127.0.0.1, through the
	// same guarded transport the default fetcher uses.
	tr := netguard.Transport(false)
	tr.DialContext = netguard.Dialer(net.Dialer{Resolver: testutil.FakeDNS(t, netip.MustParseAddr("127.0.0.1"))}, false).DialContext
	rebound, _ := NewFetcher(FetchOptions{Retries: 2, Backoff: time.Second, Transport: tr})
	for name, c := range map[string]struct {
		f   *Fetcher
		url string
	}{
		"address":   {f, ts.URL + "/a.wav"},
		"localhost": {f, "http://localhost:" + port + "/a.wav"},
		"mapped":    {f, "http://[::ffff:127.0.0.1]:" + port + "/a.wav"},
		"metadata":  {f, "http://169.254.169.254/latest/meta-data/a.wav"},
		"rebound":   {rebound, "http://cdn.example.net:" + port + "/a.wav"},
	} {
		start := time.Now()
		_, err := c.f.Fetch(testCtx(t), c.url)
		if !errors.Is(err, netguard.ErrAddressNotAllowed) || !strings.Contains(err.Error(), "refused: address not allowed") ||
			!strings.Contains(err.Error(), "audio.fetch.allow_private_hosts") {
			t.Errorf("%s: %v, want refused: address not allowed", name, err)
		}
		if time.Since(start) > 900*time.Millisecond {
			t.Errorf("%s: the refusal took %s: it was retried", name, time.Since(start))
		}
	}
	// A redirect from an allowed server into the inside is refused too.
	redirect := httptest.NewServer(http.RedirectHandler(ts.URL+"/a.wav", http.StatusFound))
	defer redirect.Close()
	trOpen := netguard.Transport(false)
	allowFirst := &firstHopTransport{first: http.DefaultTransport, rest: trOpen}
	rf, _ := NewFetcher(FetchOptions{Retries: -1, Transport: allowFirst})
	if _, err := rf.Fetch(testCtx(t), redirect.URL+"/start.wav"); !errors.Is(err, netguard.ErrAddressNotAllowed) {
		t.Errorf("redirect into the inside: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the inside server was reached %d times", n)
	}
	// With the opt-in it is fetched.
	ok, _ := NewFetcher(FetchOptions{AllowPrivateHosts: true})
	if res, err := ok.Fetch(testCtx(t), "http://localhost:"+port+"/a.wav"); err != nil || string(res.Body) != "RIFF" {
		t.Fatalf("with AllowPrivateHosts: %q %v", res.Body, err)
	}
}

// firstHopTransport sends the first request through first (standing for a
// public server) and every later one, the redirects, through rest.
type firstHopTransport struct {
	first, rest http.RoundTripper
	n           atomic.Int32
}

func (t *firstHopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.n.Add(1) == 1 {
		return t.first.RoundTrip(r)
	}
	return t.rest.RoundTrip(r)
}
