package audio

import "errors"

// The ways a recording is refused. Errors from Decode and Prepare wrap exactly one of
// them, with the detail an operator needs to fix the file.
var (
	// ErrUnsupported: not WAV (PCM 8/16/24/32-bit, float, μ-law, A-law), MP3 or FLAC.
	ErrUnsupported = errors.New("unsupported audio format")
	// ErrCorrupt: the file claims a supported format but cannot be decoded.
	ErrCorrupt = errors.New("corrupt audio")
	// ErrEmpty: no samples, or nothing but silence.
	ErrEmpty = errors.New("empty audio")
	// ErrTooLong: longer than the configured maximum duration.
	ErrTooLong = errors.New("audio too long")
)
