package tts

import "context"

// Engine synthesizes text to 16-bit mono PCM at its native rate. Implementations must
// be safe for concurrent use, honour ctx (return promptly once it is done) and return
// the same audio for the same text, voice and settings: the Renderer caches by them.
type Engine interface {
	// Name identifies the engine in cache keys and logs, e.g. "espeak-ng".
	Name() string
	// Synthesize returns the speech for text in voice and its sample rate in Hz.
	Synthesize(ctx context.Context, text, voice string) (pcm []int16, rate int, err error)
}

// Configurer is implemented by engines whose output depends on settings beyond the
// voice and the text (speed, pitch, a model version). The Renderer adds Config() to the
// cache key, so changing a setting never serves audio made with the old one.
type Configurer interface {
	// Config returns a stable description of every setting that changes the audio.
	Config() string
}
