package tts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"
)

// Renderer turns Prompts into Audio. The 8 kHz PCM of every (engine, engine settings,
// voice, text) is synthesized once and kept in a content-addressed disk cache that
// survives restarts and may be shared by several worker processes; concurrent Renders
// of the same prompt in one process share one synthesis; recently rendered Audio is
// kept in memory, bounded by bytes. A Renderer is safe for concurrent use.
type Renderer struct {
	engine       Engine
	engineName   string
	engineConfig string
	disk         *diskCache
	mem          *memCache
	group        singleflight.Group
	timeout      time.Duration
	log          *slog.Logger
}

// Option configures a Renderer at creation.
type Option func(*Renderer)

// WithMemoryLimit bounds the payload bytes of rendered Audio kept in memory (default
// 64 MiB, about 2.3 hours of G.711). 0 disables the memory cache.
func WithMemoryLimit(bytes int64) Option {
	return func(r *Renderer) { r.mem = newMemCache(max(bytes, 0)) }
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

// WithLogger sets the logger for cache problems (warnings) and syntheses (debug).
// The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(r *Renderer) {
		if l != nil {
			r.log = l
		}
	}
}

// NewRenderer returns a Renderer that synthesizes with engine and caches under
// cacheDir, which it creates if needed and checks is writable.
func NewRenderer(engine Engine, cacheDir string, opts ...Option) (*Renderer, error) {
	if engine == nil {
		return nil, errors.New("tts: nil engine: pass an Engine such as tts.Espeak{}")
	}
	disk, err := openDiskCache(cacheDir)
	if err != nil {
		return nil, err
	}
	r := &Renderer{
		engine:     engine,
		engineName: engine.Name(),
		disk:       disk,
		mem:        newMemCache(64 << 20),
		timeout:    60 * time.Second,
		log:        slog.Default(),
	}
	if c, ok := engine.(Configurer); ok {
		r.engineConfig = c.Config()
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Render returns p as codec: the speech resampled to 8 kHz and encoded, repeated
// p.Repeat times with p.Pause of silence in between, the last frame padded with the
// codec's silence byte. The Audio may be shared with other callers and must not be
// modified. Render returns when ctx is done even if the synthesis it waits for goes
// on (its result is then cached for the next caller).
func (r *Renderer) Render(ctx context.Context, p Prompt, codec Codec) (*Audio, error) {
	if !codec.Valid() {
		return nil, fmt.Errorf("tts: unknown codec %q: use PCMU or PCMA (see ParseCodec)", codec)
	}
	text, repeat, pause, err := p.plan()
	if err != nil {
		return nil, err
	}
	pk := pcmKey(r.engineName, r.engineConfig, p.Voice, text)
	ak := fmt.Sprintf("%s/%s/%d/%d", pk, codec, repeat, pause)
	if a, ok := r.mem.get(ak); ok {
		return a, nil
	}
	v, err := r.shared(ctx, "audio/"+ak, func(ctx context.Context) (any, error) {
		if a, ok := r.mem.get(ak); ok {
			return a, nil
		}
		pcm, err := r.pcm(ctx, pk, text, p.Voice)
		if err != nil {
			return nil, err
		}
		a := assemble(pcm, codec, repeat, pause)
		r.mem.add(ak, a)
		return a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("tts: render %s prompt %.40q: %w", r.engineName, text, err)
	}
	return v.(*Audio), nil
}

// pcm returns the 8 kHz PCM for key from the disk cache, or synthesizes, resamples and
// stores it.
func (r *Renderer) pcm(ctx context.Context, key, text, voice string) ([]int16, error) {
	v, err := r.shared(ctx, "pcm/"+key, func(ctx context.Context) (any, error) {
		pcm, err := r.disk.load(key)
		if err == nil {
			return pcm, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("tts: unreadable cache file, synthesizing again", "err", err)
		}
		start := time.Now()
		raw, rate, err := r.engine.Synthesize(ctx, text, voice)
		if err != nil {
			return nil, err
		}
		if rate <= 0 || len(raw) == 0 {
			return nil, fmt.Errorf("%s returned %d samples at %d Hz for voice %q: check the engine", r.engineName, len(raw), rate, voice)
		}
		pcm = Resample(raw, rate, SampleRate)
		if err := r.disk.store(key, pcm); err != nil {
			r.log.Warn("tts: cannot write cache, this prompt will be synthesized again next time", "err", err)
		}
		r.log.Debug("tts: synthesized", "engine", r.engineName, "voice", voice, "key", key[:16],
			"audio", time.Duration(len(pcm))*time.Second/SampleRate, "took", time.Since(start))
		return pcm, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]int16), nil
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
				v, err = nil, fmt.Errorf("%s panicked: %v", r.engineName, p)
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
