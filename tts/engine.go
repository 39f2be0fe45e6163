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

// RateEngine is implemented by engines that can speak faster or slower. rate is
// relative to the engine's normal speed (1); the Renderer calls SynthesizeRate only for
// rates other than 1 and refuses a rate for an engine that lacks it.
type RateEngine interface {
	Engine
	// SynthesizeRate is Synthesize at rate times the normal speed.
	SynthesizeRate(ctx context.Context, text, voice string, rate float64) (pcm []int16, sampleRate int, err error)
}
