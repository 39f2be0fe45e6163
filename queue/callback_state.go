package queue

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultApp is the app of messages sent without one (the CLI, Go code
// that sets no AppID).
const DefaultApp = "default"

// Callback delivery states.
const (
	CallbackPending   = "pending"   // queued or being retried
	CallbackDelivered = "delivered" // the receiver answered 2xx
	CallbackFailed    = "failed"    // gave up after callbacks.retry_for, or the receiver refused it for good
)

// CallbackState is the delivery state of one status callback, kept in the
// message record (field "cb:EVENT").
type CallbackState struct {
	EventID     string    `json:"event_id"`
	URL         string    `json:"url"`
	State       string    `json:"state"`
	Attempts    int       `json:"attempts"`
	LastHTTP    int       `json:"last_http,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
}

const callbackFieldPrefix = "cb:"

//go:embed callback_state.lua
var callbackStateLua string

var callbackStateScript = redis.NewScript(callbackStateLua)

// SetCallbackState writes the delivery state of the callback for event
// into the message's record. It never recreates an expired record, and a
// delivered callback is never set back to pending or failed (deliveries of
// the same event race only in that direction).
func (c *Client) SetCallbackState(ctx context.Context, id, event string, st CallbackState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	err = callbackStateScript.Run(ctx, c.rdb, []string{recordKey(id)}, callbackFieldPrefix+event, string(b),
		st.State).Err()
	if err != nil && err != redis.Nil {
		return fmt.Errorf("message %s: callback state: %w", id, err)
	}
	return nil
}

// callbackStates reads the cb:* fields of a record hash.
func callbackStates(f map[string]string) map[string]CallbackState {
	var out map[string]CallbackState
	for k, v := range f {
		ev, ok := strings.CutPrefix(k, callbackFieldPrefix)
		if !ok {
			continue
		}
		var st CallbackState
		if json.Unmarshal([]byte(v), &st) != nil {
			continue
		}
		if out == nil {
			out = map[string]CallbackState{}
		}
		out[ev] = st
	}
	return out
}
