package tts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"time"

	"golang.org/x/sync/singleflight"
)

// Renderer turns Prompts into Audio. The 8 kHz PCM of every (engine, engine settings,
// voice, rate, loudness, text) is synthesized once and kept in a content-addressed disk
// cache that survives restarts and may be shared by several worker processes (one of
// them synthesizes, the others wait for its file); concurrent Renders of the same prompt
// in one process share one synthesis; recently rendered Audio is kept in memory,
// bounded by bytes. Speech is loudness-normalized to the same target as recorded clips
// (see Loudness). A Renderer is safe for concurrent use.
type Renderer struct {
	engines       map[string]registered
	defaultEngine string
	disk          *diskCache
	mem           *memCache
	group         singleflight.Group
	timeout       time.Duration
	loudness      float64
	log           *slog.Logger
}

type registered struct {
	engine Engine
	config string // Configurer.Config(), part of cache keys
}

// Option configures a Renderer at creation.
type Option func(*Renderer)

// WithMemoryLimit bounds the payload bytes of rendered Audio kept in memory (default
// 64 MiB, about 2.3 hours of G.711). 0 disables the memory cache.
func WithMemoryLimit(bytes int64) Option {
	return func(r *Renderer) { r.mem = newMemCache(max(bytes, 0)) }
}

// WithDiskLimit bounds the bytes of the disk cache (0, the default: unbounded). Beyond
// it the least recently used files are removed, down to 90% of the bound. Every
// process sharing the directory should use the same bound.
func WithDiskLimit(bytes int64) Option {
	return func(r *Renderer) { r.disk.maxBytes = max(bytes, 0) }
}

// WithRenderTimeout bounds one synthesis (default 60 s). The synthesis runs on behalf
// of every caller waiting for the same prompt, so it is not canceled when one caller
// gives up; this timeout is what stops it.
func WithRenderTimeout(d time.Duration) Option {
	return func(r *Renderer) {
		if d > 0 {
			r.timeout = d
		}
	}
}

// WithLoudness sets the level speech is normalized to, in dBFS (see Loudness; default
// DefaultLoudness). Recorded clips should be prepared to the same target.
func WithLoudness(dbfs float64) Option {
	return func(r *Renderer) { r.loudness = dbfs }
}

// WithEngine registers engine under name, for segments that name it (Segment.Engine).
// The engine given to NewRenderer is registered under its own Name() and is the
// default.
func WithEngine(name string, engine Engine) Option {
	return func(r *Renderer) { r.register(name, engine) }
}

// WithLogger sets the logger for cache problems (warnings) and syntheses (debug).
// The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(r *Renderer) {
		if l != nil {
			r.log = l
		}
	}
}

// NewRenderer returns a Renderer that synthesizes with engine (the default engine) and
// caches under cacheDir, which it creates if needed and checks is writable.
func NewRenderer(engine Engine, cacheDir string, opts ...Option) (*Renderer, error) {
	if engine == nil {
		return nil, errors.New("tts: nil engine: pass an Engine such as tts.Espeak{}")
	}
	disk, err := openDiskCache(cacheDir)
	if err != nil {
		return nil, err
	}
	r := &Renderer{
		engines:       map[string]registered{},
		defaultEngine: engine.Name(),
		disk:          disk,
		mem:           newMemCache(64 << 20),
		timeout:       60 * time.Second,
		loudness:      DefaultLoudness,
		log:           slog.Default(),
	}
	r.register(engine.Name(), engine)
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

func (r *Renderer) register(name string, e Engine) {
	if e == nil {
		return
	}
	reg := registered{engine: e}
	if c, ok := e.(Configurer); ok {
		reg.config = c.Config()
	}
	r.engines[name] = reg
}

// Engines returns the names of the registered engines.
func (r *Renderer) Engines() []string { return slices.Sorted(maps.Keys(r.engines)) }

// Loudness returns the level, in dBFS, speech is normalized to.
func (r *Renderer) Loudness() float64 { return r.loudness }

// ErrUnknownEngine is wrapped by Render errors for a segment naming an engine that is
// not registered.
var ErrUnknownEngine = errors.New("unknown TTS engine")

// Render returns p as codec: each segment's speech (or clip) at 8 kHz, loudness
// normalized, joined with p.Gap of silence, encoded, repeated p.Repeat times with
// p.Pause of silence in between, the last frame padded with the codec's silence byte.
// The Audio may be shared with other callers and must not be modified. Render returns
// when ctx is done even if the synthesis it waits for goes on (its result is then
// cached for the next caller).
func (r *Renderer) Render(ctx context.Context, p Prompt, codec Codec) (*Audio, error) {
	if !codec.Valid() {
		return nil, fmt.Errorf("tts: unknown codec %q: use PCMU or PCMA (see ParseCodec)", codec)
	}
	segs, repeat, pause, gap, err := p.plan()
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(segs))
	for i, s := range segs {
		if keys[i], err = r.segmentKey(s); err != nil {
			return nil, err
		}
	}
	ak := contentKey(append(keys, string(codec), fmt.Sprint(repeat, pause, gap))...)
	if a, ok := r.mem.get(ak); ok {
		return a, nil
	}
	v, err := r.shared(ctx, "audio/"+ak, func(ctx context.Context) (any, error) {
		if a, ok := r.mem.get(ak); ok {
			return a, nil
		}
		var pcm []int16
		for i, s := range segs {
			part, err := r.segmentPCM(ctx, keys[i], s)
			if err != nil {
				return nil, err
			}
			if i > 0 {
				pcm = append(pcm, make([]int16, gap)...)
			}
			pcm = append(pcm, part...)
		}
		a := assemble(pcm, codec, repeat, pause)
		r.mem.add(ak, a)
		return a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("tts: render %s: %w", describe(segs), err)
	}
	return v.(*Audio), nil
}

// describe names a prompt in errors: its first text, or its clip count.
func describe(segs []Segment) string {
	for _, s := range segs {
		if s.Clip == nil {
			name := s.Engine
			if name == "" {
				name = "default engine"
			}
			return fmt.Sprintf("%s prompt %.40q", name, s.Text)
		}
	}
	return fmt.Sprintf("%d recorded clip(s)", len(segs))
}

// segmentKey returns the cache key of a segment's 8 kHz PCM.
func (r *Renderer) segmentKey(s Segment) (string, error) {
	if s.Clip != nil {
		return contentKey("vms-tts-clip/v1", s.Clip.Key, fmt.Sprintf("volume=%g", s.Volume)), nil
	}
	name := s.Engine
	if name == "" {
		name = r.defaultEngine
	}
	reg, ok := r.engines[name]
	if !ok {
		return "", fmt.Errorf("tts: %w %q: register it (configured engines: %v)", ErrUnknownEngine, name, r.Engines())
	}
	if _, ok := reg.engine.(RateEngine); !ok && s.Rate != 1 {
		return "", fmt.Errorf("tts: engine %q cannot change the speaking rate: leave rate at 1", name)
	}
	return pcmKey(reg.engine.Name(), reg.config, s.Voice, s.Text,
		fmt.Sprintf("engine=%s", name), fmt.Sprintf("rate=%g", s.Rate),
		fmt.Sprintf("loudness=%g", r.loudness+s.Volume)), nil
}

// segmentPCM returns the 8 kHz PCM of one segment.
func (r *Renderer) segmentPCM(ctx context.Context, key string, s Segment) ([]int16, error) {
	if s.Clip != nil {
		if s.Volume == 0 {
			return s.Clip.PCM, nil
		}
		return r.CachedPCM(ctx, key, func(context.Context) ([]int16, error) {
			return NormalizeLoudness(s.Clip.PCM, r.loudness, s.Volume), nil
		})
	}
	name := s.Engine
	if name == "" {
		name = r.defaultEngine
	}
	reg := r.engines[name]
	return r.CachedPCM(ctx, key, func(ctx context.Context) ([]int16, error) {
		start := time.Now()
		var raw []int16
		var rate int
		var err error
		if re, ok := reg.engine.(RateEngine); ok && s.Rate != 1 {
			raw, rate, err = re.SynthesizeRate(ctx, s.Text, s.Voice, s.Rate)
		} else {
			raw, rate, err = reg.engine.Synthesize(ctx, s.Text, s.Voice)
		}
		if err != nil {
			return nil, err
		}
		if rate <= 0 || len(raw) == 0 {
			return nil, fmt.Errorf("%s returned %d samples at %d Hz for voice %q: check the engine", name, len(raw), rate, s.Voice)
		}
		pcm := NormalizeLoudness(Resample(raw, rate, SampleRate), r.loudness, s.Volume)
		r.log.Debug("tts: synthesized", "engine", name, "voice", s.Voice, "key", key[:16],
			"audio", time.Duration(len(pcm))*time.Second/SampleRate, "took", time.Since(start))
		return pcm, nil
	})
}

// CachedPCM returns the 8 kHz PCM stored under key (a content address: a hex SHA-256
// of everything that determines the samples) in the shared disk cache, or runs produce,
// stores its result and returns it. Of all callers wanting the same key at the same
// time, in this process or another one sharing the cache directory, one runs produce and
// the others wait for its result. Package audio uses it to prepare recorded clips once
// per deployment.
func (r *Renderer) CachedPCM(ctx context.Context, key string, produce func(context.Context) ([]int16, error)) ([]int16, error) {
	if len(key) < 16 {
		return nil, fmt.Errorf("tts: cache key %q is too short: use a hex SHA-256", key)
	}
	v, err := r.shared(ctx, "pcm/"+key, func(ctx context.Context) (any, error) {
		if pcm, ok := r.loadDisk(key); ok {
			return pcm, nil
		}
		unlock, err := r.disk.lock(ctx, key)
		if err != nil {
			return nil, err
		}
		defer unlock()
		// Another process may have made it while we waited for the lock.
		if pcm, ok := r.loadDisk(key); ok {
			return pcm, nil
		}
		pcm, err := produce(ctx)
		if err != nil {
			return nil, err
		}
		if err := r.disk.store(key, pcm); err != nil {
			r.log.Warn("tts: cannot write cache, this audio will be made again next time", "err", err)
		} else if n, err := r.disk.added(int64(44 + 2*len(pcm))); err != nil {
			r.log.Warn("tts: cache eviction failed", "err", err)
		} else if n > 0 {
			r.log.Info("tts: cache full, evicted least recently used audio", "files", n, "max_bytes", r.disk.maxBytes)
		}
		return pcm, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]int16), nil
}

// loadDisk reads key from the disk cache, marking it used; a damaged file is logged
// and reported as missing so it is made again.
func (r *Renderer) loadDisk(key string) ([]int16, bool) {
	pcm, err := r.disk.load(key)
	if err == nil {
		r.disk.touch(key)
		return pcm, true
	}
	if !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("tts: unreadable cache file, making it again", "err", err)
	}
	return nil, false
}

// shared runs fn once for all concurrent callers with the same key. fn gets a context
// that keeps the first caller's values but not its cancellation, bounded by the render
// timeout, so one caller giving up does not fail the others; each caller still stops
// waiting when its own ctx is done.
func (r *Renderer) shared(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch := r.group.DoChan(key, func() (v any, err error) {
		// singleflight re-panics a DoChan panic on a fresh goroutine, which would take
		// the whole worker down: report it as this render's error instead.
		defer func() {
			if p := recover(); p != nil {
				v, err = nil, fmt.Errorf("audio rendering panicked: %v", p)
			}
		}()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		return fn(wctx)
	})
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// assemble encodes pcm, lays it out repeat times with pause samples of silence between
// repetitions, and pads the end to a whole frame with the codec's silence byte.
func assemble(pcm []int16, codec Codec, repeat, pause int) *Audio {
	enc := Encode(pcm, codec)
	n := repeat*len(enc) + (repeat-1)*pause
	buf := make([]byte, (n+FrameBytes-1)/FrameBytes*FrameBytes)
	silence := codec.SilenceByte()
	off := 0
	for i := range repeat {
		if i > 0 {
			fill(buf[off:off+pause], silence)
			off += pause
		}
		off += copy(buf[off:], enc)
	}
	fill(buf[off:], silence)
	return &Audio{Codec: codec, Payload: buf}
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}
