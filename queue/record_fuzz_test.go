package queue

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// FuzzRecordFromFields: a record hash, CDR or outbox entry read back from
// Redis may be corrupt (a bug elsewhere, an operator's HSET, a restore of
// an old dump). Reading it must give a record or an error, never a panic,
// in the worker, the API and the relay alike.
func FuzzRecordFromFields(f *testing.F) {
	f.Add(`{"id":"m1","kind":"code","to":"+8613800138000","code":"1234","play_times":2,"app_id":"shop"}`,
		"completed", "1", "200", "2026-12-03T10:00:00Z", "61000", `[{"key":"1","at":"2026-12-03T10:00:01Z","via":"rfc4733"}]`, `{"event_id":"e","state":"delivered"}`)
	f.Add(`{"id":1}`, "", "x", "-1", "not a time", "9999999999999999999999", `{"key":1}`, `[`)
	f.Add(``, "dialing", "", "", "", "", "", "")
	f.Add(`null`, "queued", "0", "0", "0001-01-01T00:00:00Z", "0", `null`, `null`)
	f.Fuzz(func(t *testing.T, message, status, attempt, sip, at, billable, keys, cb string) {
		fields := map[string]string{"message": message, "status": status, "attempt": attempt, "sip_code": sip,
			"answered_at": at, "ended_at": at, "billable_ms": billable, "keys": keys, "cb:final": cb}
		if r, err := recordFromFields(fields); err == nil && r == nil {
			t.Fatal("no record and no error")
		}
		var out Record
		_ = outcomeFromFields(fields, &out)
		values := map[string]any{"message_id": message}
		for k, v := range fields {
			values[k] = v
		}
		if got := stateChanges(3, []redis.XMessage{{ID: attempt, Values: values}}); len(got) != 1 {
			t.Fatalf("outbox entry read as %d changes", len(got))
		}
	})
}
