package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/nyaruka/phonenumbers"
	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/templates"
)

// problems collects every validation failure so they are reported together.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// Validate checks every value and returns one error listing all problems.
func (c *Config) Validate() error {
	var p problems
	nonFinite(reflect.ValueOf(*c), "", &p)
	if _, err := redis.ParseURL(c.Redis.URL); err != nil {
		p.add("redis.url %q: %v (use redis://host:6379/0 or unix:///path/redis.sock)", c.Redis.URL, err)
	}
	if c.Redis.Retention.D() < time.Minute {
		p.add("redis.retention %s: keep message records at least 1m", c.Redis.Retention.D())
	}
	if _, _, err := c.SIP.ListenAddr(); err != nil {
		p.add("sip.listen %q: %v", c.SIP.Listen, err)
	}
	if c.RTP.PortMin < 1024 || c.RTP.PortMax > 65535 || c.RTP.PortMax-c.RTP.PortMin < 1 {
		p.add("rtp.port_min/port_max %d-%d: need 1024 <= port_min < port_max <= 65535", c.RTP.PortMin, c.RTP.PortMax)
	}
	switch c.Redis.Durability {
	case DurabilityAOF, DurabilityReplica, DurabilityNone:
	default:
		p.add("redis.durability %q: one of aof (Redis fsyncs each write), replica (a replica acknowledged it) or none", c.Redis.Durability)
	}
	if d := c.Redis.DurabilityTimeout.D(); d < 10*time.Millisecond || d > time.Minute {
		p.add("redis.durability_timeout %s: between 10ms and 1m", d)
	}
	if c.Worker.JournalDir == "" {
		p.add("worker.journal_dir is empty: name a directory on local disk for the worker's journal")
	}
	switch c.RTP.AcceptFrom {
	case "answer", "signalling":
	default:
		p.add("rtp.accept_from %q: use answer (RTP only from the address in the carrier's SDP answer) or signalling (only from the address its SIP comes from)", c.RTP.AcceptFrom)
	}
	if c.Worker.Concurrency < 1 {
		p.add("worker.concurrency %d: must be at least 1", c.Worker.Concurrency)
	}
	if c.Worker.DrainTimeout.D() < 0 {
		p.add("worker.drain_timeout %s: must not be negative", c.Worker.DrainTimeout.D())
	}
	if c.Worker.PollInterval.D() < 5*time.Millisecond {
		p.add("worker.poll_interval %s: at least 5ms, or idle workers flood Redis", c.Worker.PollInterval.D())
	}
	if c.Call.RingTimeout.D() < time.Second {
		p.add("call.ring_timeout %s: at least 1s", c.Call.RingTimeout.D())
	}
	if c.Call.MaxDuration.D() < 10*time.Second {
		p.add("call.max_duration %s: at least 10s", c.Call.MaxDuration.D())
	}
	if c.Call.MediaTimeout.D() < 0 || (c.Call.MediaTimeout.D() > 0 && c.Call.MediaTimeout.D() < 500*time.Millisecond) {
		p.add("call.media_timeout %s: 0 (off) or at least 500ms", c.Call.MediaTimeout.D())
	}
	if c.Call.RepeatPause.D() < 0 || c.Call.RepeatPause.D() > 10*time.Second {
		p.add("call.repeat_pause %s: between 0 and 10s", c.Call.RepeatPause.D())
	}
	c.validateTrunks(&p)
	// tts.engine is checked with audio.engines (audio.go).
	if c.TTS.Voice == "" {
		p.add("tts.voice is empty: name an espeak-ng voice such as en-us or cmn")
	}
	if c.TTS.CacheDir == "" {
		p.add("tts.cache_dir is empty: name a directory for rendered audio")
	}
	if _, ok := c.Code.PrefixText[c.Code.Language]; !ok {
		p.add("code.language %q has no code.prefix_text entry", c.Code.Language)
	}
	for lang, text := range c.Code.PrefixText {
		if strings.TrimSpace(text) == "" {
			p.add("code.prefix_text.%s is empty", lang)
		}
		if c.VoiceFor(lang, "") == "" {
			p.add("code.prefix_text.%s: no voice for language %q in tts.voices", lang, lang)
		}
	}
	c.validateTemplates(&p)
	c.validateRouting(&p)
	c.validatePolicy(&p)
	c.validateAPI(&p)
	c.validateAudio(&p)
	if len(p) > 0 {
		return fmt.Errorf("%d problem(s):\n  - %s", len(p), strings.Join(p, "\n  - "))
	}
	return nil
}

func (c *Config) validateTrunks(p *problems) {
	if len(c.Trunks) == 0 {
		p.add("trunks: configure at least one trunk")
	}
	seen := map[string]bool{}
	for i, t := range c.Trunks {
		at := fmt.Sprintf("trunks[%d]", i)
		if t.Name == "" {
			p.add("%s.name is empty", at)
		} else if seen[t.Name] {
			p.add("%s.name %q is used twice", at, t.Name)
		}
		seen[t.Name] = true
		var u sip.Uri
		if err := sip.ParseUri(t.URI, &u); err != nil || u.Host == "" || (u.Scheme != "sip" && u.Scheme != "") {
			p.add("%s.uri %q: not a SIP URI (use sip:carrier.example.com:5060)", at, t.URI)
		}
		if t.Transport != "udp" && t.Transport != "tcp" && t.Transport != "tls" {
			p.add("%s.transport %q: use udp, tcp or tls", at, t.Transport)
		}
		if t.TLSCA != "" {
			if _, err := os.Stat(t.TLSCA); err != nil {
				p.add("%s.tls_ca: %v", at, err)
			}
		}
		if t.PasswordEnv != "" && t.Password == "" {
			p.add("%s.password_env: environment variable %s is not set", at, t.PasswordEnv)
		}
		if t.Password != "" && t.Username == "" {
			p.add("%s has a password but no username", at)
		}
		if t.CallerID != "" {
			if _, err := phonenumbers.Parse(t.CallerID, ""); err != nil || !strings.HasPrefix(t.CallerID, "+") {
				p.add("%s.caller_id %q: use an E.164 number such as +8610xxxxxxxx", at, t.CallerID)
			}
		}
		if len(t.Codecs) == 0 {
			p.add("%s.codecs is empty: list PCMU and/or PCMA in order of preference", at)
		}
		for _, codec := range t.Codecs {
			if codec != "PCMU" && codec != "PCMA" {
				p.add("%s.codecs: %q is not supported (PCMU, PCMA)", at, codec)
			}
		}
		validateTrunkRouting(p, at, t) // routing.go
	}
}

func (c *Config) validateTemplates(p *problems) {
	seen := map[string]bool{}
	for i, t := range c.Templates {
		at := fmt.Sprintf("templates[%d]", i)
		if t.ID == "" {
			p.add("%s.id is empty", at)
		} else if seen[t.ID] {
			p.add("%s.id %q is used twice", at, t.ID)
		}
		seen[t.ID] = true
		if strings.TrimSpace(t.Text) == "" && (t.Source == "" || t.Source == "tts") { // audio.go checks audio and mixed
			p.add("%s.text is empty", at)
		} else if _, err := templates.Placeholders(t.Text); err != nil {
			p.add("%s.text: %v", at, err)
		}
		if _, err := templates.ParseStatus(t.Status); err != nil {
			p.add("%s.status: %v", at, err)
		}
		if c.VoiceFor(t.Language, t.Voice) == "" {
			p.add("%s.language %q: no voice in tts.voices; set voice or add the language", at, t.Language)
		}
	}
}

// VoiceFor returns the voice for a language, an explicit voice winning;
// the empty language means tts.voice.
func (c *Config) VoiceFor(language, voice string) string {
	if voice != "" {
		return voice
	}
	if language == "" {
		return c.TTS.Voice
	}
	return c.TTS.Voices[language]
}

// TemplateRegistry returns the configured templates as a registry.
func (c *Config) TemplateRegistry() templates.Static {
	reg := templates.Static{}
	for _, t := range c.TemplateDefs() { // policy.go
		reg[t.ID] = t
	}
	return reg
}

// ListenAddr splits sip.listen into its transport and host:port.
func (s SIP) ListenAddr() (transport, hostport string, err error) {
	u, err := url.Parse(s.Listen)
	if err != nil || u.Host == "" {
		return "", "", errors.New("use transport://host:port, e.g. udp://0.0.0.0:5060")
	}
	if u.Scheme != "udp" && u.Scheme != "tcp" {
		return "", "", fmt.Errorf("transport %q: use udp or tcp", u.Scheme)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", "", fmt.Errorf("%v: use host:port", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", "", fmt.Errorf("port %q is not a port number", port)
	}
	if net.ParseIP(host) == nil {
		return "", "", fmt.Errorf("host %q: give an IP address to listen on", host)
	}
	return u.Scheme, u.Host, nil
}

// nonFinite reports every NaN or infinite number in v (YAML reads .nan and
// .inf), which range checks written as "x < lo || x > hi" would let pass.
func nonFinite(v reflect.Value, path string, p *problems) {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			p.add("%s: %g is not a number", path, f)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				name = f.Name
			}
			if path != "" {
				name = path + "." + name
			}
			nonFinite(v.Field(i), name, p)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			nonFinite(v.Index(i), fmt.Sprintf("%s[%d]", path, i), p)
		}
	case reflect.Map:
		keys := v.MapKeys()
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = fmt.Sprint(k.Interface())
		}
		for i, k := range keys {
			nonFinite(v.MapIndex(k), path+"."+names[i], p)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			nonFinite(v.Elem(), path, p)
		}
	}
}
