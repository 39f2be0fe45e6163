// Package audit is vms's append-only audit log: template changes and
// reviews, consent and suppression changes, configuration loads and every
// send accepted or refused. Entries live in a Redis stream; each carries an
// HMAC-SHA256 over its content and the previous entry's hash, so an entry
// changed, removed or inserted after the fact breaks the chain, and Verify
// finds it.
//
// The end of the chain, the head, is kept in Redis too, signed (see Head):
// removing entries from the end without the key leaves a head that no
// longer matches, and a head rewritten without the key does not verify. What
// Redis alone cannot show — the tail cut back and an older signed head put
// back, or the whole log deleted — a checkpoint shows: a signed head the
// operator keeps outside Redis (Checkpoint, VerifyCheckpoint).
package audit

import (
	"bytes"
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
	headKey   = "vms:audit:head" // the signed Head of the last entry, as JSON
)

// MaxEntryBytes bounds one stored entry: Record refuses a larger one and
// Verify reports one as corrupt.
const MaxEntryBytes = 1 << 20

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

// Head says that the log ended at entry Seq, whose hash is Hash, at Time.
// Signature is hex HMAC-SHA256 over those three fields, keyed with a key
// derived from the chain key for this one purpose (HMAC(chain key, "vms
// audit head key v1")): a signature can then never pass for an entry hash
// or the other way round, and neither the chain key nor the policy secret
// it comes from is used raw. The head in Redis is a Head (Time: the
// entry's time); a checkpoint is one signed at the time it was taken.
type Head struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	Signature string    `json:"signature"`
}

func headKeyOf(chainKey []byte) []byte {
	m := hmac.New(sha256.New, chainKey)
	m.Write([]byte("vms audit head key v1"))
	return m.Sum(nil)
}

func (h Head) mac(chainKey []byte) string {
	m := hmac.New(sha256.New, headKeyOf(chainKey))
	fmt.Fprintf(m, "vms audit head v1\n%d\n%s\n%s", h.Seq, h.Hash, h.Time.UTC().Format(time.RFC3339Nano))
	return hex.EncodeToString(m.Sum(nil))
}

func (h Head) sign(chainKey []byte) Head {
	h.Time = h.Time.UTC()
	h.Signature = h.mac(chainKey)
	return h
}

func (h Head) signedBy(chainKey []byte) bool {
	return hmac.Equal([]byte(h.mac(chainKey)), []byte(h.Signature))
}

// String describes the head for messages.
func (h Head) String() string {
	hash := h.Hash
	if len(hash) > 12 {
		hash = hash[:12] + "…"
	}
	return fmt.Sprintf("seq %d (hash %s) at %s", h.Seq, hash, h.Time.UTC().Format(time.RFC3339))
}

// ParseHead reads a Head written as JSON (a checkpoint file, the head in
// Redis). It checks the form, not the signature.
func ParseHead(data []byte) (Head, error) {
	var h Head
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return Head{}, fmt.Errorf("not a signed audit head (JSON with seq, hash, time, signature): %w", err)
	}
	if dec.More() {
		return Head{}, errors.New("not a signed audit head: data after the JSON object")
	}
	switch {
	case h.Seq < 0:
		return Head{}, fmt.Errorf("not a signed audit head: seq %d", h.Seq)
	case (h.Seq == 0) != (h.Hash == "") || (h.Hash != "" && !isHex(h.Hash, 64)):
		return Head{}, fmt.Errorf("not a signed audit head: hash %q for seq %d", clip(h.Hash), h.Seq)
	case !isHex(h.Signature, 64):
		return Head{}, errors.New("not a signed audit head: the signature is not 64 hex digits")
	case h.Time.IsZero():
		return Head{}, errors.New("not a signed audit head: no time")
	}
	return h, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// trustedHead returns the head stored in Redis, or why it cannot be
// trusted.
func trustedHead(key []byte, raw string) (Head, string) {
	if seq, hash, ok := strings.Cut(raw, " "); ok && !strings.HasPrefix(raw, "{") {
		if _, err := strconv.ParseInt(seq, 10, 64); err == nil && isHex(hash, 64) {
			return Head{}, fmt.Sprintf("the head %s is unsigned (%q, the form of vms before signed heads)", headKey, clip(raw))
		}
	}
	h, err := ParseHead([]byte(raw))
	if err != nil {
		return Head{}, fmt.Sprintf("the head %s is %v", headKey, err)
	}
	if !h.signedBy(key) {
		return Head{}, fmt.Sprintf("the head %s (%s) is not signed with this deployment's key: it was written without the key", headKey, h)
	}
	return h, ""
}

// HeadError is returned by Record when the head in Redis cannot be trusted:
// appending to it would sign over whatever was done to the log, so nothing
// is appended (and the send or change being audited fails).
type HeadError struct{ Problem string }

func (e *HeadError) Error() string {
	return "audit: " + e.Problem + "; nothing was appended: run `vms audit verify` (with --checkpoint FILE if you keep checkpoints), " +
		"then `vms audit sign-head` to sign the head again once the log is found intact"
}

// CorruptError is a stream entry that is not an audit record.
type CorruptError struct {
	StreamID string
	Reason   string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("audit: entry %s is not an audit record: %s", e.StreamID, e.Reason)
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

// Exists reports whether the log or its head exists in Redis. It needs no
// key.
func (l *Log) Exists(ctx context.Context) (bool, error) {
	n, err := l.rdb.Exists(ctx, streamKey, headKey).Result()
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	return n > 0, nil
}

// Record appends an entry of the given type; Seq, At, Prev and Hash are
// filled in. It returns the entry as written. It refuses (*HeadError) to
// append to a head that is missing while the log has entries, unsigned, or
// not signed with the key.
func (l *Log) Record(ctx context.Context, typ, actor, subject string, data map[string]string) (Entry, error) {
	key, err := l.key(ctx)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: %w", err)
	}
	e := Entry{At: l.now().UTC(), Type: typ, Actor: actor, Subject: subject, Data: data}
	for try := 0; try < 200; try++ {
		err = l.rdb.Watch(ctx, func(tx *redis.Tx) error {
			var h Head
			raw, err := tx.Get(ctx, headKey).Result()
			switch {
			case errors.Is(err, redis.Nil):
				n, err := tx.XLen(ctx, streamKey).Result()
				if err != nil {
					return err
				}
				if n > 0 {
					// The GET and the XLEN are two reads: another process's
					// append (entry and head in one MULTI) may have landed
					// between them. Only a head still missing now is missing.
					if again, err := tx.Exists(ctx, headKey).Result(); err != nil {
						return err
					} else if again == 1 {
						return redis.TxFailedErr
					}
					return &HeadError{fmt.Sprintf("the head %s is missing but the log holds %d entries", headKey, n)}
				}
			case err != nil:
				return err
			default:
				var problem string
				if h, problem = trustedHead(key, raw); problem != "" {
					return &HeadError{problem}
				}
			}
			e.Seq, e.Prev = h.Seq+1, h.Hash
			if e.Hash, err = hashEntry(key, e); err != nil {
				return err
			}
			body, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if len(body) > MaxEntryBytes {
				return fmt.Errorf("entry is %d bytes, over the %d limit", len(body), MaxEntryBytes)
			}
			nh, err := json.Marshal(Head{Seq: e.Seq, Hash: e.Hash, Time: e.At}.sign(key))
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.XAdd(ctx, &redis.XAddArgs{Stream: streamKey, Values: []any{"e", body}})
				p.Set(ctx, headKey, nh, 0)
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
	var he *HeadError
	if errors.As(err, &he) {
		return Entry{}, err
	}
	if err != nil {
		return Entry{}, fmt.Errorf("audit: append %s: %w", typ, err)
	}
	return e, nil
}

// hashEntry computes the chain hash of e (its Hash and StreamID ignored).
func hashEntry(key []byte, e Entry) (string, error) {
	e.Hash, e.StreamID = "", ""
	body, err := json.Marshal(e) // map keys are sorted: canonical
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// decodeEntry parses one stream entry as stored by Record.
func decodeEntry(id string, values map[string]any) (Entry, error) {
	v, ok := values["e"]
	if !ok {
		return Entry{}, &CorruptError{id, "it has no field e"}
	}
	if len(values) != 1 {
		return Entry{}, &CorruptError{id, fmt.Sprintf("it has %d fields, not only e", len(values))}
	}
	s, ok := v.(string)
	if !ok {
		return Entry{}, &CorruptError{id, fmt.Sprintf("its field e is a %T", v)}
	}
	if len(s) > MaxEntryBytes {
		return Entry{}, &CorruptError{id, fmt.Sprintf("it is %d bytes, over the %d limit", len(s), MaxEntryBytes)}
	}
	var e Entry
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, &CorruptError{id, err.Error()}
	}
	if dec.More() {
		return Entry{}, &CorruptError{id, "data after the JSON object"}
	}
	e.StreamID = id
	return e, nil
}

// Scan calls fn for every entry from the first, in order. A stream entry
// that does not parse is returned as a *CorruptError naming its stream ID.
func (l *Log) Scan(ctx context.Context, fn func(Entry) error) error {
	return l.scanRaw(ctx, "-", func(m redis.XMessage) error {
		e, err := decodeEntry(m.ID, m.Values)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// scanRaw calls fn for every stream entry from start ("-": all; "(ID":
// those after ID), in order.
func (l *Log) scanRaw(ctx context.Context, start string, fn func(redis.XMessage) error) error {
	for {
		msgs, err := l.rdb.XRangeN(ctx, streamKey, start, "+", 1000).Result()
		if err != nil {
			return fmt.Errorf("audit: read: %w", err)
		}
		for _, m := range msgs {
			if err := fn(m); err != nil {
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
	// Problem is the first of Problems.
	Problem string `json:"problem,omitempty"`
	// Problems lists what is wrong: the first break of the chain (the walk
	// stops there), then what the checkpoint and the head show.
	Problems []string `json:"problems,omitempty"`
	// At is the stream ID of the entry where the chain breaks.
	At string `json:"at,omitempty"`
	// Head is the head in Redis when its signature verifies.
	Head *Head `json:"head,omitempty"`
	// Checkpoint is the checkpoint the log was checked against, if any.
	Checkpoint *Head `json:"checkpoint,omitempty"`

	// What each problem is about (for SignHead).
	chainBroken, checkpointFailed, headProblem, headAhead bool
	lastSeq                                               int64
	lastHash                                              string
}

func (r *Report) add(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	if r.Problem == "" {
		r.Problem = p
	}
	r.Problems = append(r.Problems, p)
}

// verifier walks the chain one stream entry at a time.
type verifier struct {
	key  []byte
	cp   *Head
	r    Report
	seq  int64
	prev string
}

// entry checks the next stream entry; false: the chain breaks here.
func (v *verifier) entry(id string, values map[string]any) bool {
	v.r.Entries++
	e, err := decodeEntry(id, values)
	if err != nil {
		v.r.add("%v", err)
	} else if e.Seq != v.seq+1 {
		v.r.add("entry %s has sequence %d after %d: entries were removed or inserted", id, e.Seq, v.seq)
	} else if e.Prev != v.prev {
		v.r.add("entry %s (seq %d) does not follow the previous entry's hash: the chain was rewritten", id, e.Seq)
	} else if h, err := hashEntry(v.key, e); err != nil || !hmac.Equal([]byte(h), []byte(e.Hash)) {
		v.r.add("entry %s (seq %d, %s) was altered: its hash does not match its content", id, e.Seq, clip(e.Type))
	} else if v.cp != nil && e.Seq == v.cp.Seq && e.Hash != v.cp.Hash {
		v.r.add("entry %s (seq %d) is not the entry the checkpoint of %s recorded at that sequence: the log was deleted or cut back and written again",
			id, e.Seq, v.cp.Time.UTC().Format(time.RFC3339))
		v.r.checkpointFailed = true
		v.r.At = id
		return false
	} else {
		v.seq, v.prev = e.Seq, e.Hash
		return true
	}
	v.r.chainBroken = true
	v.r.At = id
	return false
}

// finish checks the end of the chain against the checkpoint and the head
// (raw, when exists).
func (v *verifier) finish(raw string, exists bool) Report {
	r := v.r
	r.lastSeq, r.lastHash = v.seq, v.prev
	if r.chainBroken || r.checkpointFailed {
		return r
	}
	if cp := v.cp; cp != nil && cp.Seq > v.seq {
		r.checkpointFailed = true
		if v.seq == 0 {
			r.add("the log is empty, but the checkpoint of %s says it had reached seq %d: the log was deleted (%s and %s)",
				cp.Time.UTC().Format(time.RFC3339), cp.Seq, streamKey, headKey)
		} else {
			r.add("the log ends at seq %d, but the checkpoint of %s says it had reached seq %d: entries %d to %d were removed from the end",
				v.seq, cp.Time.UTC().Format(time.RFC3339), cp.Seq, v.seq+1, cp.Seq)
		}
	}
	if !exists {
		if v.seq > 0 {
			r.headProblem = true
			r.add("the head %s is missing but the log holds %d entries: it was deleted", headKey, v.seq)
		}
	} else if h, problem := trustedHead(v.key, raw); problem != "" {
		r.headProblem = true
		r.add("%s", problem)
	} else {
		r.Head = &h
		switch {
		case h.Seq > v.seq:
			r.headProblem, r.headAhead = true, true
			r.add("the log ends at sequence %d but its head says %d: entries were removed from the end", v.seq, h.Seq)
		case h.Seq < v.seq:
			r.headProblem = true
			r.add("the log goes on to sequence %d after its head at %d: entries were appended without updating the head", v.seq, h.Seq)
		case h.Hash != v.prev:
			r.headProblem = true
			r.add("the last entry (seq %d) is not the one its head names: the end of the log was rewritten", v.seq)
		}
	}
	r.OK = len(r.Problems) == 0
	return r
}

// Verify walks the whole chain: every entry's hash must match its content
// and the previous entry's hash, sequence numbers must have no gaps, and the
// last entry must be the one the signed head names (so removing entries from
// the end is found too, unless an older signed head was put back: only a
// checkpoint shows that, see VerifyCheckpoint). A log that was never written
// is intact.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	return l.verify(ctx, nil)
}

// VerifyCheckpoint is Verify, and also checks the log against a checkpoint
// (a signed head kept outside Redis): the log must still hold the entry the
// checkpoint names, with the same hash. Entries appended since are fine. A
// log cut back, or deleted and written again, fails; so does a checkpoint
// not signed with the key.
func (l *Log) VerifyCheckpoint(ctx context.Context, cp Head) (Report, error) {
	return l.verify(ctx, &cp)
}

func (l *Log) verify(ctx context.Context, cp *Head) (Report, error) {
	key, err := l.key(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	v := &verifier{key: key, cp: cp}
	if cp != nil {
		v.r.Checkpoint = cp
		if !cp.signedBy(key) {
			v.r.checkpointFailed = true
			v.r.add("the checkpoint (%s) is not signed with this deployment's key: it was edited, or comes from another deployment or key", *cp)
			return v.r, nil
		}
	}
	errBreak := errors.New("break")
	walk := func(start string) (string, error) {
		last := ""
		err := l.scanRaw(ctx, start, func(m redis.XMessage) error {
			last = m.ID
			if !v.entry(m.ID, m.Values) {
				return errBreak
			}
			return nil
		})
		if errors.Is(err, errBreak) {
			err = nil
		}
		return last, err
	}
	last, err := walk("-")
	if err != nil {
		return v.r, err
	}
	for try := 0; ; try++ {
		raw, err := l.rdb.Get(ctx, headKey).Result()
		exists := err == nil
		if err != nil && !errors.Is(err, redis.Nil) {
			return v.r, fmt.Errorf("audit: read head: %w", err)
		}
		r := v.finish(raw, exists)
		// A head ahead of the walk may be entries appended meanwhile:
		// read on from where the walk ended, as long as that finds more,
		// before saying entries were removed.
		if !r.headAhead || try == 1000 || r.chainBroken {
			return r, nil
		}
		start := "-"
		if last != "" {
			start = "(" + last
		}
		n := v.r.Entries
		if l2, err := walk(start); err != nil {
			return v.r, err
		} else if l2 != "" {
			last = l2
		}
		if v.r.Entries == n {
			return r, nil
		}
	}
}

// Checkpoint verifies the log and returns its head signed at the current
// time, for the operator to keep outside Redis and pass to
// VerifyCheckpoint later. It refuses to sign a log that does not verify.
func (l *Log) Checkpoint(ctx context.Context) (Head, Report, error) {
	key, err := l.key(ctx)
	if err != nil {
		return Head{}, Report{}, fmt.Errorf("audit: %w", err)
	}
	rep, err := l.verify(ctx, nil)
	if err != nil {
		return Head{}, rep, err
	}
	if !rep.OK {
		return Head{}, rep, fmt.Errorf("audit: no checkpoint of a log that does not verify: %s", strings.Join(rep.Problems, "; "))
	}
	return Head{Seq: rep.lastSeq, Hash: rep.lastHash, Time: l.now()}.sign(key), rep, nil
}

// SignHead signs the head again at the last entry when the chain itself
// verifies (against cp, if not nil) and only the head is wrong: missing,
// unsigned (a log written by a vms before signed heads) or not signed with
// the key. It refuses when a correctly signed head is ahead of the log
// (entries were removed from the end) and when the chain or the checkpoint
// fails. The re-signing is itself audited (audit.head_signed, by actor).
// The returned report is the one before signing.
func (l *Log) SignHead(ctx context.Context, cp *Head, actor string) (Report, error) {
	key, err := l.key(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	rep, err := l.verify(ctx, cp)
	if err != nil {
		return rep, err
	}
	switch {
	case rep.OK:
		return rep, errors.New("audit: the log and its head verify: nothing to sign")
	case rep.chainBroken || rep.checkpointFailed:
		return rep, fmt.Errorf("audit: the log itself does not verify, the head is not signed: %s", strings.Join(rep.Problems, "; "))
	case rep.headAhead:
		return rep, fmt.Errorf("audit: %s; a correctly signed head ahead of the log is the evidence of it, and is kept", rep.Problem)
	}
	err = l.rdb.Watch(ctx, func(tx *redis.Tx) error {
		msgs, err := tx.XRevRangeN(ctx, streamKey, "+", "-", 1).Result()
		if err != nil {
			return err
		}
		var last Entry
		if len(msgs) > 0 {
			if last, err = decodeEntry(msgs[0].ID, msgs[0].Values); err != nil {
				return err
			}
		}
		if last.Seq != rep.lastSeq || last.Hash != rep.lastHash {
			return errors.New("the log changed while it was verified: try again")
		}
		at := last.At
		if at.IsZero() {
			at = l.now()
		}
		nh, err := json.Marshal(Head{Seq: last.Seq, Hash: last.Hash, Time: at}.sign(key))
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, headKey, nh, 0)
			return nil
		})
		return err
	}, headKey, streamKey)
	if err != nil {
		return rep, fmt.Errorf("audit: sign the head: %w", err)
	}
	_, err = l.Record(ctx, "audit.head_signed", actor, "", map[string]string{
		"seq": strconv.FormatInt(rep.lastSeq, 10), "problem": rep.Problem})
	return rep, err
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
