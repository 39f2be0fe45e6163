// Package audio turns recorded prompts into clips a call can play: it loads the bytes
// (an http(s) URL with conditional requests, a local file, or the shared audio store),
// decodes WAV, MP3 and FLAC, converts them to 8 kHz mono with tts.Resample, trims
// leading and trailing silence and normalizes the loudness to the level synthesized
// speech is normalized to (tts.Loudness), and caches the result in the tts disk cache
// under the SHA-256 of the recording. Audio that is corrupt, empty or silent, longer
// than the configured maximum or in an unsupported format is refused with an error
// wrapping ErrCorrupt, ErrEmpty, ErrTooLong or ErrUnsupported.
package audio
