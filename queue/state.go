package queue

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file is the Go face of state.lua, the one state machine of a
// message. Every change of a message's state is an Op: a value that fully
// describes one call of the script, including the time it happened, so a
// worker that cannot reach Redis can keep it in its journal and apply it
// later, unchanged (applying an Op twice changes nothing the second time:
// each op is guarded by the state, attempt and owner it expects).

//go:embed state.lua
var stateLua string

var stateScript = redis.NewScript(stateLua)

// Op is one call of the state machine.
type Op struct {
	Name string    `json:"op"`
	ID   string    `json:"id"`
	At   time.Time `json:"at"`
	Args []string  `json:"args"`
}

// OpResult is what an Op found and did.
type OpResult struct {
	// Applied is false when the record was not in the state the op
	// expects (it was applied before, or another writer moved on).
	Applied bool
	// Prev is the status the record had.
	Prev Status
	code int64
	rest []string
}

// Apply runs op. It fails only when Redis does; a record that is not in
// the state op expects is an OpResult with Applied false. A record that
// does not exist is an error wrapping ErrNotFound.
func (c *Client) Apply(ctx context.Context, op Op) (OpResult, error) {
	keys, argv := c.scriptArgs(op)
	cmd := stateScript.Run(ctx, c.rdb, keys, argv...)
	if cmd.Err() != nil {
		return OpResult{}, fmt.Errorf("message %s: %s: %w", op.ID, op.Name, cmd.Err())
	}
	return opResult(op, cmd)
}

func (c *Client) scriptArgs(op Op) ([]string, []any) {
	argv := make([]any, 0, 7+len(op.Args))
	argv = append(argv, op.Name, op.ID, formatTime(op.At), op.At.UnixMilli(), c.opts.Retention.Milliseconds(),
		eventsMaxLen, streamMaxLen)
	for _, a := range op.Args {
		argv = append(argv, a)
	}
	return messageKeys(op.ID), argv
}

func opResult(op Op, cmd *redis.Cmd) (OpResult, error) {
	res, err := cmd.Slice()
	if err != nil || len(res) < 2 {
		return OpResult{}, fmt.Errorf("message %s: %s: unexpected reply %v: %w", op.ID, op.Name, res, err)
	}
	r := OpResult{}
	r.code, _ = res[0].(int64)
	if s, ok := res[1].(string); ok {
		r.Prev = Status(s)
	}
	for _, v := range res[2:] {
		s, _ := v.(string)
		r.rest = append(r.rest, s)
	}
	if r.code == -1 {
		return r, fmt.Errorf("message %q: %w", op.ID, ErrNotFound)
	}
	r.Applied = r.code == 1
	return r, nil
}

func newOp(name, id string, args ...string) Op {
	return Op{Name: name, ID: id, At: time.Now().UTC(), Args: args}
}

// ProgressOp records a milestone of attempt's call placed by owner:
// StatusDialing with the INVITE's time (fields invite_at, trunk, call_id,
// dialog), StatusRinging, or StatusAnswered (answered_at and the complete
// dialog, which another worker needs to hang up should owner die).
func ProgressOp(id string, attempt int, owner string, to Status, fields map[string]string) Op {
	args := []string{strconv.Itoa(attempt), owner, string(to)}
	return newOp("progress", id, appendPairs(args, fields)...)
}

// FinishOp writes the outcome of attempt r.Attempt, held by owner: the
// record's outcome fields, every INVITE of the attempt (tries) to its
// attempts list, one CDR, the final event; with next, the record then goes
// back to queued for that attempt (whose task the caller enqueued first,
// with EnqueueRedial). It also replaces an unknown left for the attempt,
// since the real outcome is better than none.
func FinishOp(owner string, r *Record, tries []Attempt, next *NextAttempt) (Op, error) {
	r.BillableMinutes = BillableMinutes(r.BillableMS)
	nextN, nextReason := 0, ""
	f := resultFields(r)
	if next != nil {
		nextN, nextReason = next.Attempt, next.Reason
		f["redial_at"] = formatTime(next.At)
	}
	args := []string{strconv.Itoa(r.Attempt), owner, string(r.Status), strconv.Itoa(nextN), nextReason,
		strconv.Itoa(len(tries))}
	for _, a := range tries {
		b, err := json.Marshal(a)
		if err != nil {
			return Op{}, err
		}
		args = append(args, string(b))
	}
	return newOp("finish", r.Key(), appendPairs(args, f)...), nil
}

// appendPairs appends fields as name, value pairs in name order (so an op
// is the same bytes however the map iterates).
func appendPairs(args []string, fields map[string]string) []string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		args = append(args, k, fields[k])
	}
	return args
}

// endOp moves a record whose state is one of from to status, setting
// fields; owner is required when the record is in a call.
func endOp(id string, from []Status, to Status, owner string, fields map[string]string) Op {
	froms := make([]string, len(from))
	for i, s := range from {
		froms[i] = string(s)
	}
	return newOp("end", id, appendPairs([]string{strings.Join(froms, ","), string(to), owner}, fields)...)
}

// ClaimOutcome says what a worker may do with a message it was handed.
type ClaimOutcome int

// Claim outcomes.
const (
	// Claimed: the record moved queued → dialing; this worker places the call.
	Claimed ClaimOutcome = iota
	// AlreadyFinished: the message is terminal, or past this attempt; nothing to do.
	AlreadyFinished
	// InCall: another delivery of this attempt holds the call (the record
	// names its owner). Never dialled again: if that worker died, the
	// reaper of a live worker hangs the call up and records it.
	InCall
	// AttemptNotDue: the previous attempt is still in its call (a redial
	// task ran before the previous attempt was recorded). Retry later.
	AttemptNotDue
)

// Claim atomically moves a message from queued to dialing for attempt,
// owned by worker owner and holding the channel slot member slot. Every
// delivery of a task calls it first; only the delivery that gets Claimed
// may send an INVITE. Attempt A is claimed only from queued with attempt
// a redelivered attempt never dials twice.
//
// With d's wait (WAIT/WAITAOF), the claim is Claimed only once Redis
// confirmed it durable; otherwise the record goes back to queued and the
// error wraps ErrNotDurable: the caller must not dial.
func (c *Client) Claim(ctx context.Context, id string, attempt int, owner, slot string, d Durability) (ClaimOutcome, *Record, error) {
	if attempt < 1 {
		return 0, nil, fmt.Errorf("message %s: claim attempt %d: attempts start at 1", id, attempt)
	}
	res, err := c.applyDurable(ctx, newOp("claim", id, strconv.Itoa(attempt), owner, slot), d)
	if errors.Is(err, ErrNotDurable) {
		_, uerr := c.Apply(ctx, UnclaimOp(id, attempt, owner, slot,
			"the claim was not confirmed durable in time (redis.durability); rescheduled, not dialled"))
		return 0, nil, errors.Join(err, uerr)
	}
	if err != nil {
		// The claim may have been applied all the same (a lost reply):
		// the caller puts UnclaimOp in its journal before retrying.
		return 0, nil, err
	}
	rec, err := c.store.get(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	switch res.code {
	case 1:
		return Claimed, rec, nil
	case 2:
		return InCall, rec, nil
	case 3:
		return AttemptNotDue, rec, nil
	}
	return AlreadyFinished, rec, nil
}

// UnclaimOp puts back in the queue attempt's claim by owner with slot
// member slot, as long as no INVITE was recorded for it: for a claim whose
// outcome the caller could not learn (its reply was lost) or that was not
// durable in time.
func UnclaimOp(id string, attempt int, owner, slot, reason string) Op {
	return newOp("unclaim", id, strconv.Itoa(attempt), owner, slot, reason)
}

// Abandon ends a message that was never dialled (bad data found by the
// worker, no route): queued, or dialing and held by owner → status.
func (c *Client) Abandon(ctx context.Context, id, owner string, status Status, reason string) error {
	_, err := c.Apply(ctx, endOp(id, []Status{StatusQueued, StatusDialing}, status, owner, map[string]string{"reason": reason}))
	return err
}

// Takeover makes owner the holder of attempt's call, which dead (a worker
// that stopped beating) held. It returns false when dead no longer holds
// it. On success the caller ends the call on the wire with the returned
// dialog (empty if the INVITE's was never recorded) and finishes the
// attempt as owner.
func (c *Client) Takeover(ctx context.Context, id string, attempt int, dead, owner string) (*Takeover, error) {
	res, err := c.Apply(ctx, newOp("takeover", id, strconv.Itoa(attempt), dead, owner))
	if err != nil || !res.Applied {
		return nil, err
	}
	t := &Takeover{Status: res.Prev, Dialog: res.rest[0], Slot: res.rest[1], Trunk: res.rest[2]}
	t.AnsweredAt = parseTime(res.rest[3])
	return t, nil
}

// Takeover is what a worker needs to end a dead worker's call.
type Takeover struct {
	Status     Status
	Dialog     string // JSON, as the dead worker recorded it
	Slot       string // its channel slot member
	Trunk      string
	AnsweredAt time.Time
}

// InFlight is a call a worker holds.
type InFlight struct {
	ID      string
	Attempt int
	Owner   string
	Status  Status
}

// InFlight lists every message some worker holds in a call, across all
// shards, in two round trips (one per node in a cluster).
func (c *Client) InFlight(ctx context.Context) ([]InFlight, error) {
	pipe := c.rdb.Pipeline()
	sets := make([]*redis.StringSliceCmd, shards)
	for s := range shards {
		sets[s] = pipe.ZRange(ctx, inflightKey(s), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	type member struct {
		shard int
		id    string
		f     *redis.SliceCmd
	}
	var members []member
	pipe = c.rdb.Pipeline()
	for s, cmd := range sets {
		for _, id := range cmd.Val() {
			members = append(members, member{s, id, pipe.HMGet(ctx, recordKey(id), "status", "attempt", "owner")})
		}
	}
	if len(members) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]InFlight, 0, len(members))
	for _, m := range members {
		v := m.f.Val()
		st, _ := v[0].(string)
		if st == "" {
			// The record expired with the call: nothing to hang up.
			c.rdb.ZRem(ctx, inflightKey(m.shard), m.id)
			continue
		}
		f := InFlight{ID: m.id, Status: Status(st)}
		a, _ := v[1].(string)
		f.Attempt, _ = strconv.Atoi(a)
		f.Owner, _ = v[2].(string)
		out = append(out, f)
	}
	return out, nil
}

// Beat records that worker is alive for ttl. A worker beats several times
// per ttl, so one late beat (a GC pause) does not make it dead.
func (c *Client) Beat(ctx context.Context, worker string, ttl time.Duration) error {
	return c.rdb.Set(ctx, workerKey(worker), time.Now().UTC().Format(time.RFC3339Nano), ttl).Err()
}

// Alive reports whether worker beat within its ttl.
func (c *Client) Alive(ctx context.Context, worker string) (bool, error) {
	n, err := c.rdb.Exists(ctx, workerKey(worker)).Result()
	return n == 1, err
}

// StopBeating removes worker's heartbeat (a worker that stopped cleanly).
func (c *Client) StopBeating(ctx context.Context, worker string) error {
	return c.rdb.Del(ctx, workerKey(worker)).Err()
}

// NewWorkerID returns a unique name for a worker process.
func NewWorkerID(host string, pid int) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, pid, hex.EncodeToString(b[:]))
}
