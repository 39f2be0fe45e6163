package queue

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis key layout. Only this file knows it.
const (
	keyPrefix = "vms:"
	cdrStream = keyPrefix + "cdr"
	// cdrMaxLen bounds the CDR stream (approximate trimming); billing
	// exports read it long before that.
	cdrMaxLen = 10_000_000
	// eventsMaxLen bounds one message's event stream.
	eventsMaxLen = 100
)

func recordKey(id string) string { return keyPrefix + "msg:{" + id + "}" }
func eventsKey(id string) string { return keyPrefix + "msg:{" + id + "}:events" }

// ErrNotFound is returned for an unknown message ID.
var ErrNotFound = errors.New("message not found")

//go:embed transition.lua
var transitionLua string

var transitionScript = redis.NewScript(transitionLua)

// store reads and writes message records.
type store struct {
	rdb       redis.UniversalClient
	retention time.Duration
}

// create writes a new record in state queued unless one exists. It returns
// false when the message ID is taken.
func (s *store) create(ctx context.Context, m Message) (bool, error) {
	msg, err := json.Marshal(m)
	if err != nil {
		return false, err
	}
	now := formatTime(m.EnqueuedAt)
	ok, err := s.rdb.HSetNX(ctx, recordKey(m.ID), "message", msg).Result()
	if err != nil || !ok {
		return false, err
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, recordKey(m.ID), "status", string(StatusQueued), "attempt", 0, "updated_at", now)
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: eventsKey(m.ID), MaxLen: eventsMaxLen, Approx: true,
		Values: []any{"status", string(StatusQueued), "at", now}})
	pipe.PExpire(ctx, recordKey(m.ID), s.retention)
	pipe.PExpire(ctx, eventsKey(m.ID), s.retention)
	_, err = pipe.Exec(ctx)
	return true, err
}

// remove deletes a record that could not be enqueued.
func (s *store) remove(ctx context.Context, id string) error {
	return s.rdb.Del(ctx, recordKey(id), eventsKey(id)).Err()
}

// get reads a record.
func (s *store) get(ctx context.Context, id string) (*Record, error) {
	f, err := s.rdb.HGetAll(ctx, recordKey(id)).Result()
	if err != nil {
		return nil, err
	}
	if len(f) == 0 || f["message"] == "" {
		return nil, fmt.Errorf("message %q: %w", id, ErrNotFound)
	}
	return recordFromFields(f)
}

// transition moves a record to state to if its current state is one of
// from, setting fields and appending an event; with cdr it also appends the
// record to the CDR stream, in the same atomic step. It returns the state
// the record was in and whether the move happened.
func (s *store) transition(ctx context.Context, id string, from []Status, to Status, fields map[string]string, cdr bool) (Status, bool, error) {
	froms := make([]string, len(from))
	for i, st := range from {
		froms[i] = string(st)
	}
	now := formatTime(time.Now())
	args := []any{strings.Join(froms, ","), string(to), s.retention.Milliseconds(), now, eventsMaxLen, cdrMaxLen}
	if cdr {
		args = append(args, 1)
	} else {
		args = append(args, 0)
	}
	fields["updated_at"] = now
	for k, v := range fields {
		args = append(args, k, v)
	}
	res, err := transitionScript.Run(ctx, s.rdb, []string{recordKey(id), eventsKey(id), cdrStream, stateChangeStream}, args...).Slice()
	if err != nil {
		return "", false, fmt.Errorf("message %s: move to %s: %w", id, to, err)
	}
	prev, _ := res[1].(string)
	if prev == "" {
		return "", false, fmt.Errorf("message %q: %w", id, ErrNotFound)
	}
	return Status(prev), res[0].(int64) == 1, nil
}

// resultFields turns the outcome part of a record into hash fields.
func resultFields(r *Record) map[string]string {
	f := map[string]string{
		"attempt":          strconv.Itoa(r.Attempt),
		"reason":           r.Reason,
		"trunk":            r.Trunk,
		"call_id":          r.CallID,
		"codec":            r.Codec,
		"sip_code":         strconv.Itoa(r.SIPCode),
		"sip_reason":       r.SIPReason,
		"hung_up_by":       r.HungUpBy,
		"played_to_end":    strconv.FormatBool(r.PlayedToEnd),
		"audio_ms":         strconv.FormatInt(r.AudioMS, 10),
		"invite_at":        formatTime(r.InviteAt),
		"ringing_at":       formatTime(r.RingingAt),
		"answered_at":      formatTime(r.AnsweredAt),
		"ended_at":         formatTime(r.EndedAt),
		"billable_ms":      strconv.FormatInt(r.BillableMS, 10),
		"billable_minutes": strconv.Itoa(r.BillableMinutes),
		"confirmed":        boolField(r.Confirmed),
		"opted_out":        boolField(r.OptedOut),
	}
	if len(r.Keys) > 0 {
		keys, _ := json.Marshal(r.Keys)
		f["keys"] = string(keys)
	}
	for k, v := range f {
		if v == "" {
			delete(f, k)
		}
	}
	return f
}

func recordFromFields(f map[string]string) (*Record, error) {
	r := &Record{}
	if err := json.Unmarshal([]byte(f["message"]), &r.Message); err != nil {
		return nil, fmt.Errorf("record: corrupt message field: %w", err)
	}
	r.Status = Status(f["status"])
	r.Attempt, _ = strconv.Atoi(f["attempt"])
	r.Reason = f["reason"]
	r.Trunk = f["trunk"]
	r.CallID = f["call_id"]
	r.Codec = f["codec"]
	r.SIPCode, _ = strconv.Atoi(f["sip_code"])
	r.SIPReason = f["sip_reason"]
	r.HungUpBy = f["hung_up_by"]
	r.PlayedToEnd = f["played_to_end"] == "true"
	r.AudioMS, _ = strconv.ParseInt(f["audio_ms"], 10, 64)
	r.InviteAt = parseTime(f["invite_at"])
	r.RingingAt = parseTime(f["ringing_at"])
	r.AnsweredAt = parseTime(f["answered_at"])
	r.EndedAt = parseTime(f["ended_at"])
	r.BillableMS, _ = strconv.ParseInt(f["billable_ms"], 10, 64)
	r.BillableMinutes, _ = strconv.Atoi(f["billable_minutes"])
	r.UpdatedAt = parseTime(f["updated_at"])
	if s := f["keys"]; s != "" {
		if err := json.Unmarshal([]byte(s), &r.Keys); err != nil {
			return nil, fmt.Errorf("record: corrupt keys field: %w", err)
		}
	}
	r.Confirmed = f["confirmed"] == "true"
	r.OptedOut = f["opted_out"] == "true"
	r.Callbacks = callbackStates(f)
	if r.AppID == "" {
		r.AppID = DefaultApp // records written before apps existed
	}
	return r, nil
}

// boolField writes true as "true" and false as nothing.
func boolField(b bool) string {
	if b {
		return "true"
	}
	return ""
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
