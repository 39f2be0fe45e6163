// Package tts turns prompts into ready-to-send G.711 audio.
//
// A Prompt is text, or a sequence of segments: speech (text in a voice, spoken by a
// named Engine at a rate) and recorded clips (prepared by package audio). A Renderer
// asks the segment's Engine (espeak-ng by default; package tts/httptts fronts an HTTP
// speech service) for 16-bit PCM, resamples it to 8 kHz with an anti-aliased
// windowed-sinc filter, normalizes its loudness (see Loudness) so recorded and
// synthesized parts play alike, caches the 8 kHz PCM on disk under a SHA-256 content
// key (shared by every worker on the directory: one synthesis per deployment; bounded,
// least recently used evicted), and encodes it to PCMU or PCMA in 20 ms frames of 160
// bytes. The resulting *Audio is immutable and meant to be shared read-only by every
// call that plays the same prompt.
//
// A verification code (Code, Renderer.RenderCode) is never synthesized or cached as a
// whole: its audio is assembled per call, in memory, from the cached clips of its prefix
// and of each digit, with DigitGap and PrefixGap of silence; WarmCode prepares the
// clips.
package tts
