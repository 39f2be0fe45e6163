package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// fuzzLog is the fuzz input form of a log as read back from Redis: the head
// ("-": none), then one stream entry's "e" field per line.
func fuzzLog(n int, head func(Head) string) []byte {
	var b bytes.Buffer
	var h Head
	lines := []string{}
	prev := ""
	for i := 1; i <= n; i++ {
		e := Entry{Seq: int64(i), At: time.Date(2026, 3, 1, 9, 0, i, 0, time.UTC), Type: "send.accepted", Actor: "app:shop",
			Subject: fmt.Sprintf("m-%d", i), Data: map[string]string{"to": "+86138****8000"}, Prev: prev}
		e.Hash, _ = hashEntry(testKey, e)
		body, _ := json.Marshal(e)
		lines = append(lines, string(body))
		prev = e.Hash
		h = Head{Seq: e.Seq, Hash: e.Hash, Time: e.At}.sign(testKey)
	}
	b.WriteString(head(h))
	for _, l := range lines {
		b.WriteString("\n" + l)
	}
	return b.Bytes()
}

// FuzzVerify runs the checks of Verify and VerifyCheckpoint on arbitrary
// entries and heads as read back from Redis (seeds in testdata/fuzz/FuzzVerify:
// intact logs, a legacy head, a missing head, corrupt entries): a broken or
// corrupt log is reported, never a panic, and a log reported intact is one.
func FuzzVerify(f *testing.F) {
	signed := func(h Head) string { b, _ := json.Marshal(h); return string(b) }
	f.Add(fuzzLog(3, signed), false)
	f.Add(fuzzLog(3, signed), true)
	f.Add(fuzzLog(0, func(Head) string { return "-" }), false)
	f.Add(fuzzLog(2, func(h Head) string { return fmt.Sprintf("%d %s", h.Seq, h.Hash) }), false)
	f.Fuzz(func(t *testing.T, data []byte, asCheckpoint bool) {
		lines := bytes.SplitN(data, []byte("\n"), 257)
		head, entries := string(lines[0]), lines[1:]
		v := &verifier{key: testKey}
		if asCheckpoint {
			// The head line doubles as a checkpoint file.
			cp, err := ParseHead(lines[0])
			if err != nil || !cp.signedBy(testKey) {
				return
			}
			v.cp = &cp
		}
		for i, e := range entries {
			if !v.entry(fmt.Sprintf("1772355600000-%d", i), map[string]any{"e": string(e)}) {
				break
			}
		}
		r := v.finish(head, head != "-")
		if r.OK != (len(r.Problems) == 0) || (!r.OK && r.Problem == "") {
			t.Fatalf("report %+v", r)
		}
		if !r.OK {
			return
		}
		// Intact: every entry decodes, in sequence, chained, and the head
		// is signed and names the last one.
		if r.Entries != int64(len(entries)) || r.lastSeq != r.Entries {
			t.Fatalf("intact with %d entries, last seq %d, of %d lines", r.Entries, r.lastSeq, len(entries))
		}
		prev := ""
		for i, line := range entries {
			e, err := decodeEntry("x", map[string]any{"e": string(line)})
			if err != nil || e.Seq != int64(i+1) || e.Prev != prev {
				t.Fatalf("intact, but entry %d is %+v, %v", i+1, e, err)
			}
			prev = e.Hash
		}
		if head == "-" {
			if len(entries) > 0 {
				t.Fatal("intact without a head")
			}
			return
		}
		h, problem := trustedHead(testKey, head)
		if problem != "" || h.Seq != r.Entries || h.Hash != prev {
			t.Fatalf("intact with head %+v (%s)", h, problem)
		}
		if v.cp != nil && v.cp.Seq > r.Entries {
			t.Fatalf("intact short of the checkpoint %+v", v.cp)
		}
	})
}
