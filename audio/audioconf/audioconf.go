// Package audioconf builds the audio side of vms from its configuration: the Renderer
// with every configured TTS engine, the fetcher and store of recordings, and the Clips
// that prepare and pin them. Workers, `vms tts warm` and `vms template audio` share it
// so they render, cache and pin alike.
package audioconf

import (
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/audio"
	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/tts"
	"github.com/vms-project/vms/tts/httptts"
)

// Engines returns every configured engine by name: espeak-ng (built in) and
// audio.engines.
func Engines(cfg *config.Config, log *slog.Logger) (map[string]tts.Engine, error) {
	out := map[string]tts.Engine{"espeak-ng": tts.Espeak{}}
	for _, e := range cfg.Audio.Engines {
		switch e.Type {
		case "espeak-ng":
			out[e.Name] = tts.Espeak{Speed: e.Speed}
		case "http":
			h, err := httptts.New(httptts.Config{Name: e.Name, URL: e.URL, Headers: e.Headers, Body: e.Body,
				Format: e.Format, Timeout: e.Timeout.D(), Retries: e.Retries,
				MaxDuration: cfg.Audio.MaxDuration.D(), Logger: log})
			if err != nil {
				return nil, err
			}
			out[e.Name] = h
		default:
			return nil, fmt.Errorf("audio.engines: %s: unknown type %q", e.Name, e.Type)
		}
	}
	return out, nil
}

// Renderer returns the Renderer of a configuration: tts.engine as the default engine,
// every other engine registered under its name, the cache in tts.cache_dir bounded by
// audio.cache_max_bytes, speech normalized to audio.loudness_target.
func Renderer(cfg *config.Config, log *slog.Logger) (*tts.Renderer, error) {
	engines, err := Engines(cfg, log)
	if err != nil {
		return nil, err
	}
	def, ok := engines[cfg.TTS.Engine]
	if !ok {
		return nil, fmt.Errorf("tts.engine %q is not configured", cfg.TTS.Engine)
	}
	opts := []tts.Option{tts.WithLogger(log), tts.WithDiskLimit(cfg.Audio.CacheMaxBytes)}
	if cfg.Audio.LoudnessTarget != 0 {
		opts = append(opts, tts.WithLoudness(cfg.Audio.LoudnessTarget))
	}
	for name, e := range engines {
		opts = append(opts, tts.WithEngine(name, e))
	}
	r, err := tts.NewRenderer(def, cfg.TTS.CacheDir, opts...)
	if err != nil {
		return nil, fmt.Errorf("tts: %w", err)
	}
	return r, nil
}

// Store returns the shared audio store: audio.store.dir, or Redis when it is empty.
func Store(cfg *config.Config, rdb redis.UniversalClient) audio.Store {
	if cfg.Audio.Store.Dir != "" {
		return audio.DirStore{Dir: cfg.Audio.Store.Dir}
	}
	return audio.RedisStore{Client: rdb}
}

// Clips returns the recording loader and preparer of a configuration. renderer may be
// nil for commands that only check recordings (upload, approval).
func Clips(cfg *config.Config, rdb redis.UniversalClient, renderer *tts.Renderer, log *slog.Logger) (*audio.Clips, error) {
	f := cfg.Audio.Fetch
	fetcher, err := audio.NewFetcher(audio.FetchOptions{
		Timeout: f.Timeout.D(), MaxBytes: f.MaxBytes, MaxRedirects: noneAsNegative(f.MaxRedirects),
		Retries: noneAsNegative(f.Retries), Backoff: f.Backoff.D(), Revalidate: f.Revalidate.D(),
		CacheDir: cfg.FetchCacheDir(), AllowPrivateHosts: f.AllowPrivateHosts, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return &audio.Clips{
		Loader:   &audio.Loader{Fetcher: fetcher, Store: Store(cfg, rdb), MaxBytes: f.MaxBytes},
		Renderer: renderer,
		Options:  audio.Options{MaxDuration: cfg.Audio.MaxDuration.D(), Loudness: cfg.Audio.LoudnessTarget},
	}, nil
}

// noneAsNegative maps a configured 0 ("none") to the -1 the audio package uses for
// none (its 0 means "default").
func noneAsNegative(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
