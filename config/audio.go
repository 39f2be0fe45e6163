package config

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/vms-project/vms/templates"
)

// Audio configures recorded prompts (fetching, decoding, the shared audio store), the
// loudness every prompt is normalized to, the rendered-audio cache bound, and the TTS
// engines beyond the local espeak-ng.
type Audio struct {
	// MaxDuration refuses longer recordings (default 120s).
	MaxDuration Duration `yaml:"max_duration"`
	// LoudnessTarget is the level, in dBFS (gated RMS over 20 ms blocks, close to
	// LUFS at telephone bandwidth), that recorded and synthesized audio are both
	// normalized to (default -20).
	LoudnessTarget float64 `yaml:"loudness_target"`
	// SegmentGap is the silence between the segments of a mixed template.
	SegmentGap Duration `yaml:"segment_gap"`
	// CacheMaxBytes bounds tts.cache_dir (least recently used audio is evicted);
	// 0 means unbounded.
	CacheMaxBytes int64 `yaml:"cache_max_bytes"`
	// Store is where `vms template audio upload` puts recordings.
	Store AudioStore `yaml:"store"`
	// Fetch configures downloading recordings given as http(s) URLs.
	Fetch AudioFetch `yaml:"fetch"`
	// Engines are TTS engines besides espeak-ng, chosen per template (engine) or
	// per language (language_engines), or as the default by tts.engine.
	Engines []Engine `yaml:"engines"`
	// LanguageEngines maps a language to the engine its templates and code prompts
	// use when they name none.
	LanguageEngines map[string]string `yaml:"language_engines"`
}

// AudioStore says where uploaded recordings live.
type AudioStore struct {
	// Dir is a directory every worker can read (a shared volume); empty keeps
	// uploaded recordings in Redis.
	Dir string `yaml:"dir"`
}

// AudioFetch configures the download of recordings.
type AudioFetch struct {
	Timeout      Duration `yaml:"timeout"`
	MaxBytes     int64    `yaml:"max_bytes"`
	MaxRedirects int      `yaml:"max_redirects"`
	Retries      int      `yaml:"retries"`
	Backoff      Duration `yaml:"backoff"`
	// Revalidate is how long a fetched recording is used before the server is asked
	// again (a conditional request: nothing is downloaded while it is unchanged).
	Revalidate Duration `yaml:"revalidate"`
	// CacheDir keeps fetched recordings and their ETag/Last-Modified across restarts;
	// empty means <tts.cache_dir>/fetch.
	CacheDir string `yaml:"cache_dir"`
	// AllowPrivateHosts lets recordings be fetched from loopback, private,
	// link-local and other non-public addresses; off (the default), a
	// connection to one is refused, so a recording URL cannot reach inside
	// the network.
	AllowPrivateHosts bool `yaml:"allow_private_hosts"`
}

// Engine is a TTS engine.
type Engine struct {
	// Name is what templates and language_engines call it.
	Name string `yaml:"name"`
	// Type is http (a speech service) or espeak-ng (a second espeak-ng setting,
	// e.g. another speed).
	Type string `yaml:"type"`
	// URL receives a POST of Body (type http).
	URL string `yaml:"url"`
	// Headers are sent with every request; HeadersEnv maps a header to the
	// environment variable holding its value (for credentials).
	Headers    map[string]string `yaml:"headers"`
	HeadersEnv map[string]string `yaml:"headers_env"`
	// Body is the JSON template: {{text}}, {{voice}}, {{format}} become JSON
	// strings, {{rate}} a number. Empty: {"text": {{text}}, "voice": {{voice}},
	// "rate": {{rate}}, "format": {{format}}}.
	Body string `yaml:"body"`
	// Format is asked for in {{format}}: wav or mp3. The answer may be audio/wav or
	// audio/mpeg either way.
	Format  string   `yaml:"format"`
	Timeout Duration `yaml:"timeout"`
	Retries int      `yaml:"retries"`
	// Speed is espeak-ng's words per minute (type espeak-ng; 0: 175).
	Speed int `yaml:"speed"`
}

// EngineFor returns the engine name for a template's explicit engine and language:
// the explicit one, else the language's, else tts.engine.
func (c *Config) EngineFor(language, engine string) string {
	if engine != "" {
		return engine
	}
	if e := c.Audio.LanguageEngines[language]; e != "" {
		return e
	}
	return c.TTS.Engine
}

// HasEngine reports whether name is espeak-ng or a configured engine.
func (c *Config) HasEngine(name string) bool {
	if name == "espeak-ng" {
		return true
	}
	for _, e := range c.Audio.Engines {
		if e.Name == name {
			return true
		}
	}
	return false
}

// FetchCacheDir returns audio.fetch.cache_dir or its default.
func (c *Config) FetchCacheDir() string {
	if c.Audio.Fetch.CacheDir != "" {
		return c.Audio.Fetch.CacheDir
	}
	return filepath.Join(c.TTS.CacheDir, "fetch")
}

// applyAudioEnv reads audio.engines[].headers_env.
func (c *Config) applyAudioEnv() {
	for i := range c.Audio.Engines {
		e := &c.Audio.Engines[i]
		for h, env := range e.HeadersEnv {
			if v, ok := os.LookupEnv(env); ok {
				if e.Headers == nil {
					e.Headers = map[string]string{}
				}
				e.Headers[h] = v
			}
		}
	}
}

// templateAudio copies a configured template's audio fields into its definition and
// derives what follows from them (a mixed template's text); validateAudio reports
// what is wrong with them.
func (c *Config) templateAudio(t Template, def *templates.Template) {
	def.Source, def.Audio, def.Segments = templates.Source(t.Source), t.Audio, t.Segments
	def.Engine, def.Rate, def.Volume = c.EngineFor(t.Language, t.Engine), t.Rate, t.Volume
	if def.Engine == c.TTS.Engine && t.Engine == "" {
		def.Engine = "" // the default: keep the digest stable when tts.engine changes name only
	}
	_ = templates.CheckAudioFields(def)
}

var engineNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

func (c *Config) validateAudio(p *problems) {
	a := &c.Audio
	if d := a.MaxDuration.D(); d < time.Second || d > 30*time.Minute {
		p.add("audio.max_duration %s: use 1s to 30m", d)
	}
	if t := a.LoudnessTarget; math.IsNaN(t) || t < -40 || t > -6 {
		p.add("audio.loudness_target %g: use -40 to -6 dBFS (-20 is usual for telephone prompts)", t)
	}
	if d := a.SegmentGap.D(); d < 0 || d > 5*time.Second {
		p.add("audio.segment_gap %s: use 0 to 5s", d)
	}
	if a.CacheMaxBytes != 0 && a.CacheMaxBytes < 1<<20 {
		p.add("audio.cache_max_bytes %d: at least 1048576 (1 MiB), or 0 for no bound", a.CacheMaxBytes)
	}
	f := a.Fetch
	if f.Timeout.D() < 100*time.Millisecond {
		p.add("audio.fetch.timeout %s: at least 100ms", f.Timeout.D())
	}
	if f.MaxBytes < 1024 || f.MaxBytes > 1<<30 {
		p.add("audio.fetch.max_bytes %d: use 1024 to 1073741824", f.MaxBytes)
	}
	if f.MaxRedirects < 0 || f.MaxRedirects > 10 {
		p.add("audio.fetch.max_redirects %d: use 0 to 10", f.MaxRedirects)
	}
	if f.Retries < 0 || f.Retries > 10 {
		p.add("audio.fetch.retries %d: use 0 to 10", f.Retries)
	}
	if f.Backoff.D() < 0 || f.Revalidate.D() < 0 {
		p.add("audio.fetch.backoff and revalidate must not be negative")
	}
	seen := map[string]bool{"espeak-ng": true}
	for i, e := range a.Engines {
		at := fmt.Sprintf("audio.engines[%d]", i)
		if !engineNameRE.MatchString(e.Name) {
			p.add("%s.name %q: use 1-32 characters a-z 0-9 . _ -", at, e.Name)
		} else if seen[e.Name] {
			p.add("%s.name %q is used twice (espeak-ng is built in)", at, e.Name)
		}
		seen[e.Name] = true
		switch e.Type {
		case "http":
			if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.add("%s.url: give the http(s) URL of the speech service", at)
			}
			if e.Format != "" && e.Format != "wav" && e.Format != "mp3" {
				p.add("%s.format %q: use wav or mp3", at, e.Format)
			}
			if e.Body != "" && !json.Valid([]byte(strings.NewReplacer("{{text}}", `"t"`, "{{voice}}", `"v"`, "{{format}}", `"f"`, "{{rate}}", "1").Replace(e.Body))) {
				p.add("%s.body is not JSON once filled in: {{text}}, {{voice}} and {{format}} include their quotes, {{rate}} is a number", at)
			}
			for h, env := range e.HeadersEnv {
				if _, ok := e.Headers[h]; !ok {
					p.add("%s.headers_env.%s: environment variable %s is not set", at, h, env)
				}
			}
			if e.Timeout.D() < 0 || e.Retries < 0 || e.Retries > 10 {
				p.add("%s: timeout must not be negative, retries 0 to 10", at)
			}
		case "espeak-ng":
			if e.Speed < 0 || e.Speed > 500 {
				p.add("%s.speed %d: use 0 (default 175) to 500 words per minute", at, e.Speed)
			}
		default:
			p.add("%s.type %q: use http or espeak-ng", at, e.Type)
		}
	}
	for lang, name := range a.LanguageEngines {
		if !c.HasEngine(name) {
			p.add("audio.language_engines.%s: no engine named %q in audio.engines", lang, name)
		}
	}
	if !c.HasEngine(c.TTS.Engine) {
		p.add("tts.engine %q: use espeak-ng or the name of one of audio.engines", c.TTS.Engine)
	}
	for i, t := range c.Templates {
		at := fmt.Sprintf("templates[%d]", i)
		if _, err := templates.ParseSource(t.Source); err != nil {
			p.add("%s.source: %v", at, err)
		}
		if t.Engine != "" && !c.HasEngine(t.Engine) {
			p.add("%s.engine %q: not espeak-ng nor one of audio.engines", at, t.Engine)
		}
		def := templates.Template{ID: t.ID, Text: t.Text}
		c.templateAudio(t, &def)
		if err := templates.CheckAudioFields(&def); err != nil {
			p.add("%s: %v", at, err)
		}
	}
}

// templateText returns the text a template's placeholders are numbered over: its
// text, or for a mixed template its segments' texts joined.
func (c *Config) templateText(t Template) string {
	def := templates.Template{ID: t.ID, Text: t.Text}
	c.templateAudio(t, &def)
	return def.Text
}
