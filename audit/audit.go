// Package audit is vms's append-only audit log: template changes and
// reviews, consent and suppression changes, configuration loads and every
// send accepted or refused. Entries live in a Redis stream; each carries an
// HMAC-SHA256 over its content and the previous entry's hash, so an entry
// changed, removed or inserted after the fact breaks the chain, and Verify
// finds it.
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys of the log.
const (
	streamKey = "vms:audit"
	headKey   = "vms:audit:head" // "seq hash" of the last entry
)

// Entry is one audit record.
type Entry struct {
	// Seq numbers entries from 1 without gaps.
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
	// Type says what happened, e.g. template.approved, consent.added,
	// suppression.added, send.accepted, send.refused, config.loaded.
	Type string `json:"type"`
	// Actor is who did it: an operator name, "config", "api:APP", "worker".
	Actor string `json:"actor,omitempty"`
	// Subject is what it was done to: a template ID, a message ID. Phone
	// numbers appear only masked and as their keyed hash.
	Subject string            `json:"subject,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
	// Prev is the hash of the previous entry ("" for the first).
	Prev string `json:"prev"`
	// Hash is hex HMAC-SHA256(key, canonical form of every field above).
	Hash string `json:"hash"`
	// StreamID is the Redis stream ID (not covered by the hash).
	StreamID string `json:"stream_id,omitempty"`
}

// KeyFunc returns the HMAC key of the chain.
type KeyFunc func(ctx context.Context) ([]byte, error)

// Log appends to and reads the audit stream. It is safe for concurrent use,
// also across processes: appends are serialized by an optimistic
// transaction on the head key.
type Log struct {
	rdb redis.UniversalClient
	key KeyFunc
	now func() time.Time
}

// New returns the log on rdb. now may be nil (time.Now).
func New(rdb redis.UniversalClient, key KeyFunc, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{rdb: rdb, key: key, now: now}
}

// Record appends an entry of the given type; Seq, At, Prev and Hash are
// filled in. It returns the entry as written.
func (l *Log) Record(ctx context.Context, typ, actor, subject string, data map[string]string) (Entry, error) {
	key, err := l.key(ctx)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: %w", err)
	}
	e := Entry{At: l.now().UTC(), Type: typ, Actor: actor, Subject: subject, Data: data}
	for try := 0; try < 200; try++ {
		err = l.rdb.Watch(ctx, func(tx *redis.Tx) error {
			head, err := tx.Get(ctx, headKey).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			seq, prev := parseHead(head)
			e.Seq, e.Prev = seq+1, prev
			e.Hash = hashEntry(key, e)
			body, err := json.Marshal(e)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.XAdd(ctx, &redis.XAddArgs{Stream: streamKey, Values: []any{"e", body}})
				p.Set(ctx, headKey, strconv.FormatInt(e.Seq, 10)+" "+e.Hash, 0)
				return nil
			})
			return err
		}, headKey)
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
		// Another process appended first: try again on the new head.
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("audit: append %s: %w", typ, err)
	}
	return e, nil
}

func parseHead(s string) (int64, string) {
	seq, hash, _ := strings.Cut(s, " ")
	n, _ := strconv.ParseInt(seq, 10, 64)
	return n, hash
}

// hashEntry computes the chain hash of e (its Hash and StreamID ignored).
func hashEntry(key []byte, e Entry) string {
	e.Hash, e.StreamID = "", ""
	body, _ := json.Marshal(e) // map keys are sorted: canonical
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Scan calls fn for every entry from the first, in order. A stream entry
// that does not parse is returned as an error naming its stream ID.
func (l *Log) Scan(ctx context.Context, fn func(Entry) error) error {
	start := "-"
	for {
		msgs, err := l.rdb.XRangeN(ctx, streamKey, start, "+", 1000).Result()
		if err != nil {
			return fmt.Errorf("audit: read: %w", err)
		}
		for _, m := range msgs {
			var e Entry
			s, _ := m.Values["e"].(string)
			if err := json.Unmarshal([]byte(s), &e); err != nil {
				return fmt.Errorf("audit: entry %s is not an audit record: %w", m.ID, err)
			}
			e.StreamID = m.ID
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(msgs) < 1000 {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// Report is the result of Verify.
type Report struct {
	Entries int64 `json:"entries"`
	OK      bool  `json:"ok"`
	// Problem describes the first break in the chain, if any.
	Problem string `json:"problem,omitempty"`
	// At is the stream ID of the entry where the chain breaks.
	At string `json:"at,omitempty"`
}

// Verify walks the whole chain: every entry's hash must match its content
// and the previous entry's hash, sequence numbers must have no gaps, and the
// last entry must be the recorded head (so removing entries from the end is
// found too).
func (l *Log) Verify(ctx context.Context) (Report, error) {
	key, err := l.key(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	var r Report
	prev := ""
	var seq int64
	errBreak := errors.New("break")
	err = l.Scan(ctx, func(e Entry) error {
		r.Entries++
		switch {
		case e.Seq != seq+1:
			r.Problem = fmt.Sprintf("entry %s has sequence %d after %d: entries were removed or inserted", e.StreamID, e.Seq, seq)
		case e.Prev != prev:
			r.Problem = fmt.Sprintf("entry %s (seq %d) does not follow the previous entry's hash: the chain was rewritten", e.StreamID, e.Seq)
		case !hmac.Equal([]byte(hashEntry(key, e)), []byte(e.Hash)):
			r.Problem = fmt.Sprintf("entry %s (seq %d, %s) was altered: its hash does not match its content", e.StreamID, e.Seq, e.Type)
		}
		if r.Problem != "" {
			r.At = e.StreamID
			return errBreak
		}
		seq, prev = e.Seq, e.Hash
		return nil
	})
	if err != nil && !errors.Is(err, errBreak) {
		if strings.Contains(err.Error(), "not an audit record") {
			r.Problem = err.Error()
			return r, nil
		}
		return r, err
	}
	if r.Problem != "" {
		return r, nil
	}
	head, err := l.rdb.Get(ctx, headKey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return r, fmt.Errorf("audit: read head: %w", err)
	}
	hseq, hhash := parseHead(head)
	if hseq != seq || hhash != prev {
		r.Problem = fmt.Sprintf("the log ends at sequence %d but its head says %d: entries were removed from the end", seq, hseq)
		return r, nil
	}
	r.OK = true
	return r, nil
}

// Export writes every entry as one JSON object per line.
func (l *Log) Export(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	enc := json.NewEncoder(w)
	err := l.Scan(ctx, func(e Entry) error {
		n++
		return enc.Encode(e)
	})
	return n, err
}
