package queue

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/templates"
)

var testTemplates = templates.Static{
	"greet":   {ID: "greet", Text: "Hello {1}, your order {2} ships today.", Status: templates.StatusApproved, Voice: "en-us"},
	"draft":   {ID: "draft", Text: "Draft {1}.", Status: templates.StatusPending, Voice: "en-us"},
	"noparam": {ID: "noparam", Text: "Maintenance tonight.", Status: templates.StatusApproved, Voice: "en-us"},
}

func newTestClient(t *testing.T) (*Client, *redis.Client) {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	c := NewClient(rdb, Options{Templates: testTemplates, DefaultLanguage: "en", Languages: map[string]bool{"en": true, "zh": true}})
	t.Cleanup(func() { _ = c.Close() })
	return c, rdb
}

func TestBadInputIsRefusedAndNothingEnqueued(t *testing.T) {
	c, rdb := newTestClient(t)
	ctx := context.Background()
	long := strings.Repeat("x", 33)
	cases := []struct {
		name    string
		send    func() error
		code    string
		message string
	}{
		{"no plus", func() error { return sendCode(c, "8613800138000", "1234", 0) }, "invalid_number", "E.164"},
		{"letters", func() error { return sendCode(c, "+86138abc", "1234", 0) }, "invalid_number", "E.164"},
		{"invalid for country", func() error { return sendCode(c, "+8612345678", "1234", 0) }, "invalid_number", "not a valid phone number"},
		{"code too short", func() error { return sendCode(c, "+8613800138000", "123", 0) }, "invalid_code", "4 to 10 digits"},
		{"code too long", func() error { return sendCode(c, "+8613800138000", "12345678901", 0) }, "invalid_code", "4 to 10 digits"},
		{"code not digits", func() error { return sendCode(c, "+8613800138000", "12a4", 0) }, "invalid_code", "digits"},
		{"play times 4", func() error { return sendCode(c, "+8613800138000", "1234", 4) }, "invalid_play_times", "1 to 3"},
		{"play times -1", func() error { return sendCode(c, "+8613800138000", "1234", -1) }, "invalid_play_times", "1 to 3"},
		{"unknown language", func() error {
			_, err := c.SendCode(ctx, CodeRequest{To: "+8613800138000", Code: "1234", Language: "fr"})
			return err
		}, "invalid_language", "fr"},
		{"bad message id", func() error {
			_, err := c.SendCode(ctx, CodeRequest{ID: "has space", To: "+8613800138000", Code: "1234"})
			return err
		}, "invalid_message_id", "message id"},
		{"unknown template", func() error { return sendTTS(c, "nope", "a", "b") }, "template_not_found", "does not exist"},
		{"template not approved", func() error { return sendTTS(c, "draft", "a") }, "template_not_approved", "pending"},
		{"too few params", func() error { return sendTTS(c, "greet", "a") }, "invalid_params", "2 placeholder(s) but 1"},
		{"too many params", func() error { return sendTTS(c, "noparam", "a") }, "invalid_params", "0 placeholder(s) but 1"},
		{"param too long", func() error { return sendTTS(c, "greet", "a", long) }, "invalid_params", "at most 32"},
		{"empty param", func() error { return sendTTS(c, "greet", "a", " ") }, "invalid_params", "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.send()
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an InputError", err)
			}
			if ie.Code != tc.code || !strings.Contains(ie.Msg, tc.message) {
				t.Fatalf("err = %s: %q, want %s containing %q", ie.Code, ie.Msg, tc.code, tc.message)
			}
		})
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("refused sends left keys in Redis: %v", keys)
	}
}

func sendCode(c *Client, to, code string, play int) error {
	_, err := c.SendCode(context.Background(), CodeRequest{To: to, Code: code, PlayTimes: play})
	return err
}

func sendTTS(c *Client, tmpl string, params ...string) error {
	_, err := c.SendTTS(context.Background(), TTSRequest{To: "+8613800138000", TemplateID: tmpl, Params: params})
	return err
}

func TestSendEnqueuesOneTaskPerID(t *testing.T) {
	c, rdb := newTestClient(t)
	ctx := context.Background()
	rec, err := c.SendTTS(ctx, TTSRequest{ID: "n-1", To: "+86 138 0013 8000", TemplateID: "greet", Params: []string{"Ann", "A-1"}})
	if err == nil {
		t.Fatal("a number with spaces was accepted; E.164 has none")
	}
	rec, err = c.SendTTS(ctx, TTSRequest{ID: "n-1", To: "+8613800138000", TemplateID: "greet", Params: []string{"Ann", "A-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != StatusQueued || rec.PlayTimes != DefaultPlayTimes || rec.Kind != KindTTS {
		t.Fatalf("record = %+v", rec)
	}
	again, err := c.SendTTS(ctx, TTSRequest{ID: "n-1", To: "+8613800138000", TemplateID: "greet", Params: []string{"Ann", "A-1"}})
	if !errors.Is(err, ErrDuplicate) || again == nil || again.ID != "n-1" {
		t.Fatalf("second send = %v, %v; want the existing record and ErrDuplicate", again, err)
	}
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo(QueueNotify, "n-1")
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task = %+v, %v; want one pending task with ID n-1", info, err)
	}
	code, err := c.SendCode(ctx, CodeRequest{To: "+8613800138000", Code: "0042"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo(QueueCode, code.ID); err != nil {
		t.Fatalf("code task not in the code queue: %v", err)
	}
}

func TestWatchSeesEveryState(t *testing.T) {
	c, _ := newTestClient(t)
	ctx := context.Background()
	rec, err := c.SendCode(ctx, CodeRequest{To: "+8613800138000", Code: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	var got []Status
	done := make(chan error, 1)
	go func() {
		_, err := c.Watch(ctx, rec.ID, func(e Event) { got = append(got, e.Status) })
		done <- err
	}()
	now := time.Now()
	if out, _, err := c.Claim(ctx, rec.ID, 1, "w1", "s1", Durability{}); err != nil || out != Claimed {
		t.Fatal(out, err)
	}
	mustApply(t, c, ProgressOp(rec.ID, 1, "w1", StatusDialing, map[string]string{"invite_at": formatTime(now)}))
	mustApply(t, c, ProgressOp(rec.ID, 1, "w1", StatusRinging, nil))
	mustApply(t, c, ProgressOp(rec.ID, 1, "w1", StatusAnswered, nil))
	mustApply(t, c, finishOp(t, "w1", &Record{Message: rec.Message, Attempt: 1, Status: StatusCompleted}, nil))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []Status{StatusQueued, StatusDialing, StatusRinging, StatusAnswered, StatusCompleted}
	if strings.Join(statusStrings(got), ",") != strings.Join(statusStrings(want), ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
	if _, err := c.Watch(ctx, "no-such-message", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("watch of an unknown ID: %v, want ErrNotFound", err)
	}
}

func statusStrings(s []Status) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}

func TestBillableMinutes(t *testing.T) {
	for ms, want := range map[int64]int{0: 0, -5: 0, 1: 1, 59_999: 1, 60_000: 1, 60_001: 2, 125_000: 3} {
		if got := BillableMinutes(ms); got != want {
			t.Errorf("BillableMinutes(%d) = %d, want %d", ms, got, want)
		}
	}
}

func TestMaskNumber(t *testing.T) {
	for in, want := range map[string]string{
		"+8613800138000": "+86*******8000", "+12025550100": "+1******0100", "+14155552671": "+1******2671",
		"+442071838750": "+44******8750", "+3312": "+33*2", "13800138000": "***********", "+": "*"} {
		if got := MaskNumber(in); got != want {
			t.Errorf("MaskNumber(%s) = %s, want %s", in, got, want)
		}
	}
}
