package audio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// Loader reads the bytes of a recording from its reference:
//
//	https://host/path.wav, http://...   fetched with the Fetcher
//	store:<sha256>                     the shared audio Store (vms template audio upload)
//	file:///path/greeting.wav, /path/greeting.wav, relative/path.wav
//	                                   a local file, which must exist on every worker
type Loader struct {
	Fetcher *Fetcher
	Store   Store
	// MaxBytes refuses larger local files (default 20 MiB).
	MaxBytes int64
}

// Kind returns "url", "store" or "file" for a reference.
func Kind(ref string) string {
	switch {
	case strings.HasPrefix(ref, "http://"), strings.HasPrefix(ref, "https://"):
		return "url"
	case strings.HasPrefix(ref, StorePrefix):
		return "store"
	}
	return "file"
}

// Load returns the bytes of ref.
func (l *Loader) Load(ctx context.Context, ref string) ([]byte, error) {
	if strings.TrimSpace(ref) == "" {
		return nil, errors.New("empty audio reference: give an http(s) URL, a file path or store:<sha256>")
	}
	switch Kind(ref) {
	case "url":
		if l.Fetcher == nil {
			return nil, fmt.Errorf("%s: fetching recordings is not configured", RedactURL(ref))
		}
		res, err := l.Fetcher.Fetch(ctx, ref)
		if err != nil {
			return nil, err
		}
		return res.Body, nil
	case "store":
		if l.Store == nil {
			return nil, fmt.Errorf("%s: no audio store is configured (audio.store)", ref)
		}
		return l.Store.Get(ctx, ref)
	}
	path := ref
	if strings.HasPrefix(ref, "file://") {
		u, err := url.Parse(ref)
		if err != nil || (u.Host != "" && u.Host != "localhost") {
			return nil, fmt.Errorf("%q: use file:///absolute/path", ref)
		}
		path = u.Path
	}
	max := l.MaxBytes
	if max <= 0 {
		max = 20 << 20
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w: the file must exist on every worker; or upload it with `vms template audio upload`", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("recording %s: more than %d bytes: shorten it or raise audio.fetch.max_bytes", path, max)
	}
	return b, nil
}
