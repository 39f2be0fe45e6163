package templates_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vms-project/vms/audio"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/templates"
)

func TestAudioFieldsAreCheckedAndDerived(t *testing.T) {
	mixed := templates.Template{ID: "m", Source: templates.SourceMixed, Segments: []templates.Segment{
		{Audio: "https://cdn.example.com/hello.wav", Text: "Hello from Example Shop."},
		{Text: "Your code is {1}, valid until {2}."},
		{Audio: "store:" + strings.Repeat("a", 64)},
	}}
	if err := templates.CheckAudioFields(&mixed); err != nil {
		t.Fatal(err)
	}
	if want := "Hello from Example Shop. Your code is {1}, valid until {2}. [recording]"; mixed.Text != want {
		t.Errorf("derived text %q, want %q", mixed.Text, want)
	}
	if got := mixed.Recordings(); len(got) != 2 {
		t.Errorf("recordings %v", got)
	}
	rec := templates.Template{ID: "r", Source: "audio", Audio: "/srv/prompts/notice.wav"}
	if err := templates.CheckAudioFields(&rec); err != nil || rec.Text != "[recording]" {
		t.Errorf("audio template: %v, text %q", err, rec.Text)
	}
	for name, bad := range map[string]templates.Template{
		"unknown source":         {ID: "x", Source: "video", Text: "hi"},
		"audio without audio":    {ID: "x", Source: "audio"},
		"recording with {1}":     {ID: "x", Source: "audio", Audio: "a.wav", Text: "hi {1}"},
		"mixed without segments": {ID: "x", Source: "mixed"},
		"empty segment":          {ID: "x", Source: "mixed", Segments: []templates.Segment{{}}},
		"transcript with {1}":    {ID: "x", Source: "mixed", Segments: []templates.Segment{{Audio: "a.wav", Text: "{1}"}}},
		"tts with audio":         {ID: "x", Text: "hi", Audio: "a.wav"},
		"rate too fast":          {ID: "x", Text: "hi", Rate: 3},
		"volume too loud":        {ID: "x", Text: "hi", Volume: 20},
	} {
		if err := templates.CheckAudioFields(&bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Parameters are read as their placeholder's `as` says, in the template's language,
// in every TTS segment; recordings are left alone.
func TestSpokenParts(t *testing.T) {
	en := templates.Template{ID: "bill", Language: "en", Text: "Your bill of {1} is due on {2} at {3}. Reference {4}, {5}.",
		Params: []templates.Param{{As: "money"}, {As: "date"}, {As: "time"}, {As: "digits"}, {As: "number"}}}
	parts, err := en.SpokenParts([]string{"$1,280.50", "2026-12-01", "14:05", "4821", "12.5%"})
	if err != nil {
		t.Fatal(err)
	}
	want := "Your bill of one thousand two hundred eighty dollars and fifty cents is due on December first, twenty twenty-six at two oh five PM. Reference four eight two one, twelve point five percent."
	if len(parts) != 1 || parts[0].Text != want {
		t.Errorf("got %q\nwant %q", parts[0].Text, want)
	}
	zh := templates.Template{ID: "zh", Language: "zh", Source: templates.SourceMixed, Segments: []templates.Segment{
		{Audio: "greeting.wav", Text: "您好"},
		{Text: "您的账单{1}元将于{2}扣款，验证码{3}。"},
	}, Params: []templates.Param{{As: "number"}, {As: "date"}, {As: "digits"}}}
	if err := templates.CheckAudioFields(&zh); err != nil {
		t.Fatal(err)
	}
	parts, err = zh.SpokenParts([]string{"1280.5", "2026-12-01", "4821"})
	if err != nil {
		t.Fatal(err)
	}
	if parts[0].Audio != "greeting.wav" || parts[1].Text != "您的账单一千二百八十点五元将于二零二六年十二月一日扣款，验证码四 八 二 幺。" {
		t.Errorf("parts %+v", parts)
	}
	// A value that cannot be read as declared is refused (at send time, by CheckParams).
	if err := en.CheckParams([]string{"lots", "2026-12-01", "14:05", "4821", "1"}); err == nil || !strings.Contains(err.Error(), "money") {
		t.Errorf("bad money accepted: %v", err)
	}
	if err := en.CheckParams([]string{"$1", "2026-02-30", "14:05", "4821", "1"}); err == nil || !strings.Contains(err.Error(), "no day 30") {
		t.Errorf("bad date accepted: %v", err)
	}
}

// realClips checks recordings the way a deployment does (package audio, real files).
func realClips(t *testing.T) *audio.Clips {
	f, err := audio.NewFetcher(audio.FetchOptions{AllowPrivateHosts: true}) // test servers are on 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	return &audio.Clips{Loader: &audio.Loader{Fetcher: f}}
}

func tone(t *testing.T, amp string) []byte {
	path := filepath.Join(t.TempDir(), "t.wav")
	if out, err := exec.Command("sox", "-n", "-r", "16000", "-c", "1", "-b", "16", path, "synth", "0.5", "sine", "700", "vol", amp).CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	b, _ := os.ReadFile(path)
	return b
}

// Approval pins the SHA-256 of every recording; a template whose recordings cannot be
// played cannot be approved; Unapprove takes the approval back only for the content
// it was given.
func TestApprovalPinsRecordings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	good := tone(t, "0.3")
	var body atomic.Pointer[[]byte]
	body.Store(&good)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/wav")
		w.Write(*body.Load())
	}))
	defer ts.Close()
	local := filepath.Join(t.TempDir(), "bye.wav")
	os.WriteFile(local, tone(t, "0.2"), 0o644)

	st := templates.NewStore(redistest.Start(t).Client(t), templates.StoreOptions{})
	tpl := templates.Template{ID: "promo", Language: "en", Source: templates.SourceMixed, Segments: []templates.Segment{
		{Audio: ts.URL + "/hello.wav", Text: "Hello."}, {Text: "Your code is {1}."}, {Audio: local, Text: "Goodbye."},
	}, Params: []templates.Param{{As: "digits"}}}
	if _, err := st.Put(ctx, tpl, "alice"); err != nil {
		t.Fatal(err)
	}
	// Without a checker, a template with recordings cannot be approved.
	if _, err := st.Approve(ctx, "promo", templates.Review{By: "bob"}); !errors.Is(err, templates.ErrReview) {
		t.Fatalf("approved without checking recordings: %v", err)
	}
	st.SetClipChecker(realClips(t))
	got, err := st.Approve(ctx, "promo", templates.Review{By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != templates.StatusApproved || got.Pins[ts.URL+"/hello.wav"] != audio.SHA256(good) || got.Pins[local] == "" || !got.PinsMatch() {
		t.Fatalf("approved %s with pins %v", got.Status, got.Pins)
	}
	// Pins are review state: they do not change the content digest.
	unpinned := got
	unpinned.Pins = nil
	if got.Digest() != unpinned.Digest() {
		t.Error("pins change the digest")
	}
	// A stale digest does not unapprove; the current one does, with the reason.
	if u, err := st.Unapprove(ctx, "promo", "stale", "x"); err != nil || u.Status != templates.StatusApproved {
		t.Errorf("stale unapprove: %s %v", u.Status, err)
	}
	u, err := st.Unapprove(ctx, "promo", got.Digest(), "recording changed since approval")
	if err != nil || u.Status != templates.StatusPending || u.Reason != "recording changed since approval" {
		t.Errorf("unapprove: %s %q %v", u.Status, u.Reason, err)
	}
	// A broken recording is refused at approval with the reason.
	junk := []byte("<html>gone</html>")
	body.Store(&junk)
	_, err = st.Approve(ctx, "promo", templates.Review{By: "bob"})
	if !errors.Is(err, templates.ErrReview) || !strings.Contains(err.Error(), ts.URL+"/hello.wav") {
		t.Errorf("broken recording approved: %v", err)
	}
}
