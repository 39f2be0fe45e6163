// Package tts turns prompt text into ready-to-send G.711 audio.
//
// A Renderer asks an Engine (espeak-ng by default) for 16-bit PCM, resamples it to
// 8 kHz with an anti-aliased windowed-sinc filter, caches the 8 kHz PCM on disk under a
// SHA-256 content key, and encodes it to PCMU or PCMA in 20 ms frames of 160 bytes.
// The resulting *Audio is immutable and meant to be shared read-only by every call that
// plays the same prompt.
package tts
