package audio

import (
	"context"
	"errors"
	"fmt"

	"github.com/vms-project/vms/tts"
)

// ErrChanged is wrapped by Clips.Clip when a recording no longer has the SHA-256 that
// was pinned when its template was approved.
var ErrChanged = errors.New("recording changed since approval")

// Clips loads recordings, checks them against their pins and prepares them once per
// deployment: the prepared 8 kHz PCM is kept in the Renderer's shared disk cache under
// the recording's SHA-256 and the preparation settings.
type Clips struct {
	Loader   *Loader
	Renderer *tts.Renderer
	Options  Options
}

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
	data, err := c.Loader.Load(ctx, ref)
	if err != nil {
		return Prepared{}, err
	}
	sum := SHA256(data)
	if pin != "" && sum != pin {
		return Prepared{}, fmt.Errorf("%s: %w: approved with SHA-256 %s, now %s: review and approve the template again", describeRef(ref), ErrChanged, short(pin), short(sum))
	}
	key := tts.ContentKey("vms-audio-clip", sum, c.options().Version())
	pcm, err := c.Renderer.CachedPCM(ctx, key, func(context.Context) ([]int16, error) {
		pcm, _, err := Prepare(data, c.options())
		return pcm, err
	})
	if err != nil {
		return Prepared{}, fmt.Errorf("%s: %w", describeRef(ref), err)
	}
	return Prepared{Clip: &tts.Clip{Key: key, PCM: pcm}, SHA256: sum}, nil
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
