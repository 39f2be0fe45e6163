package callback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
)

// relayGroup is the consumer group of the state-change outbox that turns
// changes into callback tasks.
const relayGroup = "vms-callbacks"

// task is the payload of a TaskType task.
type task struct {
	EventID   string          `json:"event_id"`
	Event     string          `json:"event"`
	MessageID string          `json:"message_id"` // the message's key (queue.Key)
	AppID     string          `json:"app_id"`
	URL       string          `json:"url"`
	FirstAt   time.Time       `json:"first_at"`
	Body      json.RawMessage `json:"body"`
}

// relay reads the outbox and enqueues one callback task per subscribed
// event. A change is acknowledged only after its task is enqueued (or it
// needs none); the task ID is the event ID, so relaying a change twice (a
// relay that died before acknowledging) never makes a second callback.
type relay struct {
	q        *queue.Client
	aq       *asynq.Client
	apps     map[string]config.App
	cfg      config.Callbacks
	consumer string
	log      *slog.Logger
}

func newConsumerName() string {
	h, _ := os.Hostname()
	return h + "-" + strconv.Itoa(os.Getpid())
}

// reclaimAfter is how long an outbox entry read but not acknowledged waits
// before any relay takes it again: a relay that died, or a read whose reply
// was lost (Redis stalled; the entries went to a connection given up on).
// Handling an entry twice is harmless (the task ID is the event ID).
const reclaimAfter = 10 * time.Second

// run relays until ctx ends.
func (r *relay) run(ctx context.Context) {
	for ctx.Err() == nil {
		changes, err := r.q.ReadStateChanges(ctx, relayGroup, r.consumer, 100, time.Second, reclaimAfter)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("callback relay: read state changes", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for _, ch := range changes {
			if err := r.handle(ctx, ch); err != nil {
				// Left unacknowledged: claimed again after reclaimAfter.
				r.log.Error("callback relay", "message_id", ch.MessageID, "status", ch.Status, "err", err)
				continue
			}
			if err := r.q.AckStateChanges(ctx, relayGroup, ch.StreamID); err != nil && ctx.Err() == nil {
				r.log.Error("callback relay: ack", "err", err)
			}
		}
	}
}

// handle enqueues the callback of one change, if any is due.
func (r *relay) handle(ctx context.Context, ch queue.StateChange) error {
	ev := EventName(ch.Status)
	if ev == "" {
		return nil // nothing to report
	}
	// However late (an outage of Redis or of every vms api), a change is
	// reported: api.callbacks.retry_for counts from the first delivery try.
	rec, err := r.q.Get(ctx, ch.MessageID)
	if errors.Is(err, queue.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	app, ok := r.apps[rec.AppID]
	url := rec.CallbackURL
	if url == "" {
		url = app.CallbackURL
	}
	if url == "" || !ok {
		if url != "" {
			r.log.Warn("callback not sent: the message's app is not configured in api.apps, so there is no key to sign with",
				"message_id", rec.ID, "app_id", rec.AppID)
		}
		return nil
	}
	var reps []Report
	if app.Subscribed(ev) {
		reps = append(reps, NewReport(ch, rec))
	}
	if app.Subscribed(EventKeypress) {
		if rep, ok := NewKeypressReport(ch, rec); ok {
			reps = append(reps, rep)
		}
	}
	for _, rep := range reps {
		if err := r.enqueue(ctx, rec, url, rep); err != nil {
			return err
		}
	}
	return nil
}

// enqueue makes the callback task of one report and marks it pending in
// the record. The task ID is the event ID: an event relayed twice is
// enqueued once.
func (r *relay) enqueue(ctx context.Context, rec *queue.Record, url string, rep Report) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(task{EventID: rep.EventID, Event: rep.Event, MessageID: rec.Key(), AppID: rec.AppID,
		URL: url, FirstAt: time.Now().UTC(), Body: body})
	if err != nil {
		return err
	}
	_, err = r.aq.EnqueueContext(ctx, asynq.NewTask(TaskType, payload), asynq.TaskID(rep.EventID),
		asynq.Queue(Queue), asynq.MaxRetry(1_000_000), asynq.Timeout(r.cfg.Timeout.D()+5*time.Second),
		asynq.Retention(r.cfg.RetryFor.D()))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil // relayed before: the event already has its task
	}
	if err != nil {
		return fmt.Errorf("enqueue callback %s: %w", rep.EventID, err)
	}
	return r.q.SetCallbackState(ctx, rec.Key(), rep.Event, queue.CallbackState{EventID: rep.EventID, URL: url,
		State: queue.CallbackPending, UpdatedAt: time.Now().UTC()})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
