package audio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/vms-project/vms/tts"
)

// ErrChanged is wrapped by Clips.Clip when a recording no longer has the SHA-256 that
// was pinned when its template was approved.
var ErrChanged = errors.New("recording changed since approval")

// Clips loads recordings, checks them against their pins and prepares them once per
// deployment: the prepared 8 kHz PCM is kept in the Renderer's shared disk cache under
// the recording's SHA-256 and the preparation settings.
//
// Prepared clips are also kept in memory (up to 64 MiB of PCM), so a hot recording
// costs one conditional request (or none within audio.fetch.revalidate) and no decoding
// per call. A store:<sha256> reference pinned to that same SHA-256 is content-addressed:
// once its bytes were verified in this process it is not loaded again.
type Clips struct {
	Loader   *Loader
	Renderer *tts.Renderer
	Options  Options

	mu       sync.Mutex
	mem      map[string]*tts.Clip // by cache key
	memBytes int
}

// clipMemoryLimit bounds the PCM bytes of prepared clips kept in memory.
const clipMemoryLimit = 64 << 20

// Prepared is a recording ready to play, with its pin.
type Prepared struct {
	Clip   *tts.Clip
	SHA256 string
}

// Clip returns the prepared recording at ref. When pin is not empty the recording's
// SHA-256 must equal it, or the error wraps ErrChanged: approved audio cannot be
// swapped behind the reviewer's back. Errors name the reference (with secrets in URLs
// hidden).
func (c *Clips) Clip(ctx context.Context, ref, pin string) (Prepared, error) {
	if Kind(ref) == "store" && pin != "" && strings.EqualFold(strings.TrimPrefix(ref, StorePrefix), pin) {
		if clip := c.memGet(c.key(pin)); clip != nil {
			return Prepared{Clip: clip, SHA256: pin}, nil
		}
	}
	data, err := c.Loader.Load(ctx, ref)
	if err != nil {
		return Prepared{}, err
	}
	sum := SHA256(data)
	if pin != "" && sum != pin {
		return Prepared{}, fmt.Errorf("%s: %w: approved with SHA-256 %s, now %s: review and approve the template again", describeRef(ref), ErrChanged, short(pin), short(sum))
	}
	key := c.key(sum)
	if clip := c.memGet(key); clip != nil {
		return Prepared{Clip: clip, SHA256: sum}, nil
	}
	prepare := func(context.Context) ([]int16, error) {
		pcm, _, err := Prepare(data, c.options())
		return pcm, err
	}
	var pcm []int16
	if c.Renderer != nil {
		pcm, err = c.Renderer.CachedPCM(ctx, key, prepare)
	} else {
		pcm, err = prepare(ctx)
	}
	if err != nil {
		return Prepared{}, fmt.Errorf("%s: %w", describeRef(ref), err)
	}
	clip := &tts.Clip{Key: key, PCM: pcm}
	c.memPut(clip)
	return Prepared{Clip: clip, SHA256: sum}, nil
}

// key is the cache key of the prepared recording with SHA-256 sum.
func (c *Clips) key(sum string) string {
	return tts.ContentKey("vms-audio-clip", sum, c.options().Version())
}

func (c *Clips) memGet(key string) *tts.Clip {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mem[key]
}

// memPut keeps clip, dropping arbitrary others (map order) beyond the memory limit.
func (c *Clips) memPut(clip *tts.Clip) {
	n := 2 * len(clip.PCM)
	if n > clipMemoryLimit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		c.mem = map[string]*tts.Clip{}
	}
	if _, ok := c.mem[clip.Key]; ok {
		return
	}
	for k, old := range c.mem {
		if c.memBytes+n <= clipMemoryLimit {
			break
		}
		delete(c.mem, k)
		c.memBytes -= 2 * len(old.PCM)
	}
	c.mem[clip.Key] = clip
	c.memBytes += n
}

// Check loads and prepares the recording at ref, for upload and approval: it returns
// the SHA-256 to pin and what the recording is, or the reason it is refused.
func (c *Clips) Check(ctx context.Context, ref string) (string, Info, error) {
	data, err := c.Loader.Load(ctx, ref)
	if err != nil {
		return "", Info{}, err
	}
	_, info, err := Prepare(data, c.options())
	if err != nil {
		return "", info, fmt.Errorf("%s: %w", describeRef(ref), err)
	}
	return SHA256(data), info, nil
}

func (c *Clips) options() Options {
	o := c.Options
	if o.Loudness == 0 && c.Renderer != nil {
		o.Loudness = c.Renderer.Loudness()
	}
	return o
}

func describeRef(ref string) string {
	if Kind(ref) == "url" {
		return RedactURL(ref)
	}
	return ref
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

// CheckClip is Check returning only the SHA-256: it makes *Clips a
// templates.ClipChecker, which pins recordings when a template is approved.
func (c *Clips) CheckClip(ctx context.Context, ref string) (string, error) {
	sum, _, err := c.Check(ctx, ref)
	return sum, err
}
