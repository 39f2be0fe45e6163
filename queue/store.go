package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned for an unknown message ID.
var ErrNotFound = errors.New("message not found")

// store reads and writes message records.
type store struct {
	rdb redis.UniversalClient
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
	if err := outcomeFromFields(f, r); err != nil {
		return nil, err
	}
	r.UpdatedAt = parseTime(f["updated_at"])
	r.Callbacks = callbackStates(f)
	if r.AppID == "" {
		r.AppID = DefaultApp // records written before apps existed
	}
	return r, nil
}

// outcomeFromFields reads the state and outcome fields of a record hash,
// a CDR or a final event into r.
func outcomeFromFields(f map[string]string, r *Record) error {
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
	if s := f["keys"]; s != "" {
		if err := json.Unmarshal([]byte(s), &r.Keys); err != nil {
			return fmt.Errorf("record: corrupt keys field: %w", err)
		}
	}
	r.Confirmed = f["confirmed"] == "true"
	r.OptedOut = f["opted_out"] == "true"
	return nil
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
