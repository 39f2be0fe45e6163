package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/templates"
)

// Asynq task type and queues. Codes go to a queue that workers serve first:
// a person is waiting for them.
const (
	TaskSend    = "vms:send"
	QueueCode   = "vms-code"
	QueueNotify = "vms-notify"
)

// Queues is the asynq queue weighting workers use.
var Queues = map[string]int{QueueCode: 8, QueueNotify: 2}

// ErrDuplicate is returned (wrapped) when a message ID was sent before; the
// existing record is returned alongside it and no second call is made.
var ErrDuplicate = errors.New("message already exists")

// Options configures a Client.
type Options struct {
	// Templates resolves template IDs at enqueue time.
	Templates templates.Registry
	// Retention is how long records (and asynq's copy of the task, which
	// keeps the ID reserved) are kept.
	Retention time.Duration
	// TaskTimeout bounds one task's run in a worker: ring time, the call,
	// and slack.
	TaskTimeout time.Duration
	// DefaultLanguage is used for code calls that name none.
	DefaultLanguage string
	// Languages lists the languages code calls may use.
	Languages map[string]bool
	// Policy, when set, checks every message before it is enqueued and
	// again right before it is dialled (see policy.go and package policy).
	Policy Policy
}

// Client enqueues messages and reads their records. It is safe for
// concurrent use.
type Client struct {
	rdb   redis.UniversalClient
	aq    *asynq.Client
	store store
	opts  Options
	// groups remembers the outbox consumer groups already created.
	groups sync.Map
	// faultAfterCreate, set by tests, runs between creating a record and
	// enqueueing its task: a crash there must not strand the message.
	faultAfterCreate func() error
}

// NewClient returns a Client on rdb. Close it to release asynq's resources;
// rdb stays open.
func NewClient(rdb redis.UniversalClient, opts Options) *Client {
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.TaskTimeout <= 0 {
		opts.TaskTimeout = 10 * time.Minute
	}
	return &Client{rdb: rdb, aq: asynq.NewClientFromRedisClient(rdb),
		store: store{rdb: rdb}, opts: opts}
}

// Close releases the asynq client (not the Redis client it was given).
func (c *Client) Close() error { return c.aq.Close() }

// CodeRequest asks for a verification code call.
type CodeRequest struct {
	ID        string // optional; generated when empty
	To        string // E.164
	Code      string // 4-10 digits
	PlayTimes int    // 1-3, 0 means 2
	Language  string // optional; Options.DefaultLanguage when empty
	// Upstream fields: see Message. AppID "" means DefaultApp.
	AppID          string
	SessionContext string
	CallbackURL    string
}

// TTSRequest asks for a template notification call.
type TTSRequest struct {
	ID         string
	To         string
	TemplateID string
	Params     []string
	PlayTimes  int
	// Upstream fields: see Message. AppID "" means DefaultApp.
	AppID          string
	SessionContext string
	CallbackURL    string
}

// SendCode validates and enqueues a verification code call. Invalid input is
// an *InputError and nothing is enqueued. A message ID sent before returns
// its record and an error wrapping ErrDuplicate.
func (c *Client) SendCode(ctx context.Context, req CodeRequest) (*Record, error) {
	m := Message{ID: req.ID, Kind: KindCode, Code: req.Code, Language: req.Language}
	if err := setUpstream(&m, req.AppID, req.SessionContext, req.CallbackURL); err != nil {
		return nil, err
	}
	if m.Language == "" {
		m.Language = c.opts.DefaultLanguage
	}
	var err error
	if m.To, err = NormalizeNumber(req.To); err != nil {
		return nil, err
	}
	if err := checkCode(req.Code); err != nil {
		return nil, err
	}
	if c.opts.Languages != nil && !c.opts.Languages[m.Language] {
		return nil, inputErr("invalid_language", "language %q has no code.prefix_text in the config", m.Language)
	}
	if m.PlayTimes, err = playTimes(req.PlayTimes); err != nil {
		return nil, err
	}
	return c.enqueue(ctx, m, QueueCode)
}

// SendTTS validates and enqueues a template notification call.
func (c *Client) SendTTS(ctx context.Context, req TTSRequest) (*Record, error) {
	m := Message{ID: req.ID, Kind: KindTTS, TemplateID: req.TemplateID, Params: req.Params}
	if err := setUpstream(&m, req.AppID, req.SessionContext, req.CallbackURL); err != nil {
		return nil, err
	}
	var err error
	if m.To, err = NormalizeNumber(req.To); err != nil {
		return nil, err
	}
	if m.PlayTimes, err = playTimes(req.PlayTimes); err != nil {
		return nil, err
	}
	if err := CheckTemplate(ctx, c.opts.Templates, req.TemplateID, req.Params); err != nil {
		return nil, err
	}
	return c.enqueue(ctx, m, QueueNotify)
}

// CheckTemplate checks that a template exists, is approved and that params
// fit it. Workers call it again right before dialing.
func CheckTemplate(ctx context.Context, reg templates.Registry, id string, params []string) error {
	if reg == nil {
		return inputErr("template_not_found", "no templates are configured")
	}
	t, err := reg.Template(ctx, id)
	if errors.Is(err, templates.ErrNotFound) {
		return inputErr("template_not_found", "template %q does not exist: see templates in the config", id)
	} else if err != nil {
		return err
	}
	if t.Status != templates.StatusApproved {
		return inputErr("template_not_approved", "template %q is %s: only approved templates can be sent", id, t.Status)
	}
	if err := t.CheckParams(params); err != nil {
		return inputErr("invalid_params", "%v", err)
	}
	return nil
}

func (c *Client) enqueue(ctx context.Context, m Message, queueName string) (*Record, error) {
	if m.ID == "" {
		m.ID = newMessageID()
	} else if err := checkMessageID(m.ID); err != nil {
		return nil, err
	}
	m.EnqueuedAt = time.Now().UTC()
	if c.opts.Policy != nil {
		// A message ID sent before is a duplicate, whatever policy says now.
		if _, err := c.store.get(ctx, m.Key()); err == nil {
			return c.duplicate(ctx, m.Key())
		}
	}
	decision, err := c.admit(ctx, &m) // policy.go
	if err != nil {
		return nil, err
	}
	msg, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	deferReason := ""
	if decision.Verdict == Defer {
		deferReason = decision.Reason
	}
	// The creation token makes a retried create (go-redis retries a call
	// whose reply was lost) find its own record instead of a duplicate.
	toHash := ""
	if c.opts.Policy != nil {
		if toHash, err = c.opts.Policy.NumberHash(ctx, m.To); err != nil {
			return nil, fmt.Errorf("enqueue %s: %w", m.ID, err)
		}
	}
	res, err := c.Apply(ctx, newOp("create", m.Key(), string(msg), newMessageID(), deferReason, MaskNumber(m.To), toHash))
	if err != nil {
		// The record may exist all the same (a lost reply): its task is
		// then enqueued by the sweeper, and a retry of the send with the
		// same ID answers with the record.
		c.releasePolicy(ctx, m)
		return nil, fmt.Errorf("enqueue %s: %w", m.ID, err)
	}
	if !res.Applied {
		return c.duplicate(ctx, m.Key())
	}
	if c.faultAfterCreate != nil {
		if err := c.faultAfterCreate(); err != nil {
			return nil, err
		}
	}
	if err := c.enqueueTask(ctx, m, 1); err != nil {
		// The record stays queued and listed as unqueued: the sweeper
		// enqueues its task.
		return nil, fmt.Errorf("enqueue %s: %w (the message is recorded and will be dispatched)", m.ID, err)
	}
	return c.store.get(ctx, m.Key())
}

// enqueueTask enqueues the task of attempt n of m, unless it exists, and
// then marks the record's task as known to exist.
func (c *Client) enqueueTask(ctx context.Context, m Message, n int) error {
	opts := []asynq.Option{asynq.TaskID(taskID(m.Key(), n)), asynq.Queue(queueOf(m.Kind)), asynq.MaxRetry(3),
		asynq.Timeout(c.opts.TaskTimeout), asynq.Retention(c.opts.Retention)}
	if !m.NotBefore.IsZero() {
		opts = append(opts, asynq.ProcessAt(m.NotBefore))
	}
	_, err := c.aq.EnqueueContext(ctx, asynq.NewTask(TaskSend, encodeTask(m.Key(), n)), opts...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return err
	}
	// A conflict is this very task (a retry, the sweeper) or a task kept
	// for retention whose record expired and was sent again: either way the
	// ID has its task and no second one is made.
	_, err = c.Apply(ctx, newOp("enqueued", m.Key()))
	return err
}

// queueOf is the asynq queue of a kind: codes first, a person waits for them.
func queueOf(k Kind) string {
	if k == KindCode {
		return QueueCode
	}
	return QueueNotify
}

// taskID is the asynq TaskID of attempt n of a message: the message ID for
// the first, id#n for redials. '#' never appears in message IDs.
func taskID(id string, n int) string {
	if n <= 1 {
		return id
	}
	return id + "#" + strconv.Itoa(n)
}

func (c *Client) duplicate(ctx context.Context, id string) (*Record, error) {
	rec, err := c.store.get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, ErrDuplicate)
	}
	return rec, fmt.Errorf("message %s: %w (status %s); no second call is made", id, ErrDuplicate, rec.Status)
}

// Get returns the record of a message, or an error wrapping ErrNotFound.
func (c *Client) Get(ctx context.Context, id string) (*Record, error) {
	rec, err := c.store.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Attempts, err = c.Attempts(ctx, id); err != nil {
		return nil, err
	}
	return rec, nil
}

// Watch calls fn for every state change of a message, from the first, until
// the message reaches a terminal state (then it returns the record) or ctx
// ends.
func (c *Client) Watch(ctx context.Context, id string, fn func(Event)) (*Record, error) {
	last := "0"
	for {
		res, err := c.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{eventsKey(id), last}, Block: time.Second}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		terminal := false
		for _, s := range res {
			for _, msg := range s.Messages {
				last = msg.ID
				ev := eventOf(id, msg)
				if fn != nil {
					fn(ev)
				}
				terminal = terminal || ev.Status.Terminal()
			}
		}
		if terminal {
			return c.store.get(ctx, id)
		}
		if last == "0" {
			// Nothing yet: the message may not exist at all.
			if _, err := c.store.get(ctx, id); err != nil {
				return nil, err
			}
		}
	}
}

// Events returns every state change of a message, oldest first (the
// message's event stream, bounded to its last 100).
func (c *Client) Events(ctx context.Context, id string) ([]Event, error) {
	msgs, err := c.rdb.XRange(ctx, eventsKey(id), "-", "+").Result()
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		if _, err := c.store.get(ctx, id); err != nil {
			return nil, err
		}
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, eventOf(id, m))
	}
	return out, nil
}

func eventOf(id string, m redis.XMessage) Event {
	ev := Event{MessageID: id, Status: Status(str(m.Values["status"])), At: parseTime(str(m.Values["at"])),
		Reason: str(m.Values["reason"])}
	ev.Attempt, _ = strconv.Atoi(str(m.Values["attempt"]))
	ev.SIPCode, _ = strconv.Atoi(str(m.Values["sip_code"]))
	return ev
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// newMessageID returns a random 128-bit ID.
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
