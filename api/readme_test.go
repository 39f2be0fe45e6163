package api_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vms-project/vms/queue"
)

// TestReadmeSigningExample runs the README's curl/openssl example against
// a test server: the documented recipe and the Go implementation agree.
func TestReadmeSigningExample(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the README example: apt-get install -y %s", tool, tool)
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, "<!-- sign-example -->"), strings.Index(s, "<!-- /sign-example -->")
	if i < 0 || j < i {
		t.Fatal("README.md has no <!-- sign-example --> block")
	}
	block := s[i:j]
	script := block[strings.Index(block, "```sh\n")+6 : strings.LastIndex(block, "```")]
	e := newEnv(t, nil)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "VMS_URL="+e.srv.URL, "VMS_APP=shop", "VMS_KEY="+shopKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README example failed: %v\n%s", err, out)
	}
	var rec queue.Record
	if err := json.Unmarshal(out, &rec); err != nil || rec.Status != queue.StatusQueued || rec.AppID != "shop" || rec.Code != "482913" {
		t.Fatalf("README example answered %s, want the new record", out)
	}
}
