// Package testutil holds small helpers that tests of several packages share.
package testutil

import (
	"bytes"
	"os"
	"sync"
	"testing"
)

// LockedBuffer is a bytes.Buffer safe for concurrent writers (loggers,
// process output copiers) and the test's reads.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// SharedDir is a temporary directory that all tests of one package run
// share, e.g. a TTS cache (as workers of one deployment do). It is created
// on first use; Run removes it when the tests are done.
type SharedDir struct {
	Prefix string

	mu  sync.Mutex
	dir string
}

// Path returns the directory, creating it on first use.
func (s *SharedDir) Path(tb testing.TB) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		d, err := os.MkdirTemp("", s.Prefix)
		if err != nil {
			tb.Fatal(err)
		}
		s.dir = d
	}
	return s.dir
}

// Run runs the package's tests, removes the directory and returns the exit
// code: call it from TestMain as os.Exit(dir.Run(m)).
func (s *SharedDir) Run(m *testing.M) int {
	code := m.Run()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
	return code
}
