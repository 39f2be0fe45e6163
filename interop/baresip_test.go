//go:build linux

package interop

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"text/template"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
)

var (
	//go:embed testdata/baresip/config.tmpl
	baresipConfig string
	//go:embed testdata/baresip/accounts.tmpl
	baresipAccounts string
)

// baresipParams fills the templates of testdata/baresip.
type baresipParams struct {
	Port         int    // SIP port (UDP and TCP) on 127.0.0.1
	User         string // the number vms dials
	ModuleDir    string
	RecordDir    string // where the sndfile filter writes the WAV files
	JitterBuffer string // jitter_buffer_delay, in frames: "min-max"
}

// baresipModuleDirs are where distributions install baresip's modules.
var baresipModuleDirs = []string{
	"/usr/lib/baresip/modules",
	"/usr/lib/x86_64-linux-gnu/baresip/modules",
	"/usr/lib/aarch64-linux-gnu/baresip/modules",
	"/usr/local/lib/baresip/modules",
}

// startBaresip writes a configuration directory for an auto-answering
// callee of user on a free loopback port, starts baresip headless and waits
// until it answers SIP. It returns the peer, its address and the directory
// its recordings go to.
func startBaresip(t *testing.T, user string) (*peer, string, string) {
	t.Helper()
	bin := requireBinary(t, "baresip", "baresip-core")
	prm := baresipParams{Port: freePort(t), User: user, JitterBuffer: "0-0"}
	for _, d := range baresipModuleDirs {
		if _, err := os.Stat(filepath.Join(d, "g711.so")); err == nil {
			prm.ModuleDir = d
			break
		}
	}
	if prm.ModuleDir == "" {
		t.Fatalf("baresip is installed but its modules (g711.so, aubridge.so, sndfile.so) are not in %v: "+
			"install them with `apt-get install -y baresip-core`", baresipModuleDirs)
	}
	dir := t.TempDir()
	prm.RecordDir = filepath.Join(dir, "recordings")
	if err := os.Mkdir(prm.RecordDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"config": baresipConfig, "accounts": baresipAccounts, "contacts": ""} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := template.Must(template.New(name).Parse(text)).Execute(f, prm); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// -f: this configuration only; -v: debug log (shown when the test
	// fails); -t: quit on its own after 3 minutes even if the cleanup never
	// runs. No UI module: baresip reads no terminal.
	p := startPeer(t, "baresip", bin, "-f", dir, "-v", "-t", "180")
	addr := fmt.Sprintf("127.0.0.1:%d", prm.Port)
	p.waitSIP(t, addr)
	return p, addr, prm.RecordDir
}

// waitRecording waits until the sndfile filter has closed the WAV file of
// the audio baresip received (dump-*-dec.wav) and returns it.
func waitRecording(t *testing.T, b *peer, dir string, d time.Duration) (*wavAudio, string) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if done, err := b.exited(); done {
			t.Fatalf("baresip exited (%v) before it finished the recording", err)
		}
		paths, _ := filepath.Glob(filepath.Join(dir, "*-dec.wav"))
		if len(paths) > 1 {
			t.Fatalf("baresip wrote %d recordings of received audio, want 1: %v", len(paths), paths)
		}
		if len(paths) == 1 {
			w, err := readWAV(paths[0])
			if err == nil && w.Complete {
				return w, paths[0]
			}
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Fatalf("baresip wrote no complete recording of the received audio in %s within %s (files %v, last error %v)", dir, d, names, last)
	return nil, ""
}

// A call to baresip, a real SIP user agent, is answered automatically; the
// audio baresip decoded and recorded lasts as long as the message (within
// 100 ms) and is speech, not silence.
func TestBaresipCalleeRecordsTheMessage(t *testing.T) {
	const number = "+8613800138000"
	b, addr, recDir := startBaresip(t, number)
	r := newRig(t, func(c *config.Config) {
		c.Trunks[0].URI = "sip:" + number + "@" + addr
	})

	rec, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: number, Code: "4821", PlayTimes: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := r.wait(t, rec.ID, 40*time.Second)
	if got.Status != queue.StatusCompleted || got.SIPCode != 200 || !got.PlayedToEnd || got.HungUpBy != "caller" {
		t.Fatalf("record: status %s %d (%s), played to end %v, hung up by %q; want completed 200, played to end, by the caller",
			got.Status, got.SIPCode, got.Reason, got.PlayedToEnd, got.HungUpBy)
	}
	if got.AudioMS <= 0 {
		t.Fatalf("record has no audio length (audio_ms %d)", got.AudioMS)
	}

	w, path := waitRecording(t, b, recDir, 10*time.Second)
	gotMS := w.Duration().Milliseconds()
	diff := gotMS - got.AudioMS
	rms := w.RMS()
	t.Logf("baresip recorded %s: %d Hz, %d channel(s), %d ms (message %d ms, difference %+d ms), RMS %.0f",
		filepath.Base(path), w.Rate, w.Channels, gotMS, got.AudioMS, diff, rms)
	if diff < -100 || diff > 100 {
		t.Errorf("baresip recorded %d ms of audio, the message is %d ms: differ by %+d ms (want ±100 ms)", gotMS, got.AudioMS, diff)
	}
	// Speech from espeak-ng has an RMS in the thousands; silence, or
	// noise from mis-decoded G.711, is far from it.
	if rms < 500 {
		t.Errorf("baresip's recording has RMS %.0f: silence, not the message (want > 500)", rms)
	}
	if !b.waitOutput("Set audio decoder: "+got.Codec+" ", time.Second) {
		t.Errorf("baresip's log does not show it decoding %s, the codec vms recorded", got.Codec)
	}
	if !b.waitOutput("call: answering call", time.Second) || !b.waitOutput(" terminated (duration", time.Second) {
		t.Errorf("baresip's log does not show the call answered and ended")
	}
	if n := r.worker.Dialer.RTPPortsInUse(); n != 0 {
		t.Errorf("%d RTP ports still held after the call", n)
	}
}
