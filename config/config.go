// Package config holds the one configuration tree of vms: the YAML file
// (configs/vms.example.yaml documents every key), environment overrides for
// secrets, and validation that reports every problem at once.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vms-project/vms/templates"
)

// Config is the whole vms configuration.
type Config struct {
	Redis     Redis      `yaml:"redis"`
	SIP       SIP        `yaml:"sip"`
	RTP       RTP        `yaml:"rtp"`
	Worker    Worker     `yaml:"worker"`
	Call      Call       `yaml:"call"`
	Trunks    []Trunk    `yaml:"trunks"`
	TTS       TTS        `yaml:"tts"`
	Code      Code       `yaml:"code"`
	Templates []Template `yaml:"templates"`

	// Sections of later features, each defined in its own file.
	Routing Routing `yaml:"routing"` // routing.go: trunk selection, limits, failover, redial
	Policy  Policy  `yaml:"policy"`  // policy.go: consent, suppression, frequency, quiet hours, audit
	API     API     `yaml:"api"`     // api.go: HTTP API, apps, callbacks, billing
	Audio   Audio   `yaml:"audio"`   // audio.go: recorded prompts, fetching, normalization
}

// Redis says where the queues and message records live.
type Redis struct {
	// URL is a go-redis URL: redis://, rediss:// or unix://. REDIS_URL overrides it.
	URL string `yaml:"url"`
	// Retention is how long message records and their events are kept.
	Retention Duration `yaml:"retention"`
	// Durability is what must hold of a claim before its INVITE leaves, so
	// that Redis losing its last writes can never bring a call back:
	// "aof" (Redis fsyncs every write: appendonly yes + appendfsync always,
	// or WAITAOF on Redis >= 7.2), "replica" (WAIT: a replica has it; for
	// Sentinel), or "none" (an explicit opt-out).
	Durability string `yaml:"durability"`
	// DurabilityTimeout bounds the wait for WAIT/WAITAOF; a claim not
	// acknowledged in time is not dialled and the message is rescheduled.
	DurabilityTimeout Duration `yaml:"durability_timeout"`
}

// Redis durability modes.
const (
	DurabilityAOF     = "aof"
	DurabilityReplica = "replica"
	DurabilityNone    = "none"
)

// SIP configures the signalling user agent of a worker.
type SIP struct {
	// Listen is transport://host:port, e.g. udp://0.0.0.0:5060. Port 0 picks a free port.
	Listen string `yaml:"listen"`
	// PublicHost is the address carriers reach this worker on (Contact, SDP c=).
	// Empty: the listen host, or the outbound interface's address when that is 0.0.0.0.
	PublicHost string `yaml:"public_host"`
	// UserAgent is sent in the User-Agent header.
	UserAgent string `yaml:"user_agent"`
}

// RTP bounds the UDP ports used for media and says where media is taken from.
type RTP struct {
	PortMin int `yaml:"port_min"`
	PortMax int `yaml:"port_max"`
	// AcceptFrom is where the callee's RTP may come from: "answer" (the IP
	// address of the c= line of the carrier's SDP answer, any port) or
	// "signalling" (the IP address the trunk's 200 OK came from). RTP from
	// anywhere else is dropped.
	AcceptFrom string `yaml:"accept_from"`
}

// Worker configures a worker process.
type Worker struct {
	// Concurrency is the number of calls one worker process handles at once.
	Concurrency int `yaml:"concurrency"`
	// DrainTimeout is how long SIGTERM waits for calls in progress to finish.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// PollInterval is how often an idle worker asks Redis for new jobs; it is
	// the pick-up latency of a verification code when the queue was empty.
	PollInterval Duration `yaml:"poll_interval"`
	// JournalDir holds each worker process's write-ahead journal: call
	// progress and outcomes that could not be written to Redis, replayed in
	// order once it answers (and at start-up, for a worker that died).
	JournalDir string `yaml:"journal_dir"`
}

// Call holds per-call timers.
type Call struct {
	// RingTimeout ends an unanswered call with CANCEL.
	RingTimeout Duration `yaml:"ring_timeout"`
	// MaxDuration is a safety cap on an answered call.
	MaxDuration Duration `yaml:"max_duration"`
	// RepeatPause is the silence between repetitions of a message.
	RepeatPause Duration `yaml:"repeat_pause"`
	// ConfirmText is spoken, per language, after the callee pressed a
	// template's confirm key; then vms hangs up.
	ConfirmText map[string]string `yaml:"confirm_text"`
	// MediaTimeout ends an answered call when the callee has sent no RTP
	// for this long; 0 turns it off (many carriers send none on a one-way call).
	MediaTimeout Duration `yaml:"media_timeout"`
}

// Trunk is a carrier SIP trunk that calls are sent to.
type Trunk struct {
	Name      string `yaml:"name"`
	URI       string `yaml:"uri"`
	Transport string `yaml:"transport"`
	Username  string `yaml:"username"`
	// Password is the digest password; prefer PasswordEnv so it stays out of files.
	Password    string   `yaml:"password"`
	PasswordEnv string   `yaml:"password_env"`
	CallerID    string   `yaml:"caller_id"`
	Codecs      []string `yaml:"codecs"`
	// TLSCA is a PEM file of CAs to trust for transport tls (empty: system roots).
	TLSCA string `yaml:"tls_ca"`
	// TLSServerName overrides the name checked in the trunk's certificate.
	TLSServerName string `yaml:"tls_server_name"`

	// Routing and limits (config/routing.go validates them).
	// FromDomain is the host of the From URI (default: the trunk's host).
	FromDomain string `yaml:"from_domain"`
	// AuthUsername is the digest user when it differs from username (the From user).
	AuthUsername string `yaml:"auth_username"`
	// Realm, when set, is the only digest realm the credentials are sent to.
	Realm string `yaml:"realm"`
	// CallerIDs is a pool of E.164 caller IDs; caller_id alone is a pool of one.
	CallerIDs []string `yaml:"caller_ids"`
	// CallerIDMode picks from the pool per call: fixed, round_robin or country.
	CallerIDMode string `yaml:"caller_id_mode"`
	// Prefixes are the E.164 prefixes ("+86", "+1415") the trunk serves; empty serves all.
	Prefixes []string `yaml:"prefixes"`
	// Priority orders trunks serving the same prefix: lower is tried first.
	Priority int `yaml:"priority"`
	// MaxChannels caps calls up on this trunk across all workers (0: no cap).
	MaxChannels int `yaml:"max_channels"`
	// CPS caps new calls per second on this trunk across all workers (0: no cap).
	CPS float64 `yaml:"cps"`
}

// TTS configures speech synthesis.
type TTS struct {
	Engine string `yaml:"engine"`
	// Voice is the default espeak-ng voice.
	Voice    string `yaml:"voice"`
	CacheDir string `yaml:"cache_dir"`
	// Voices maps a language (as used by templates and code.prefix_text) to a voice.
	Voices map[string]string `yaml:"voices"`
}

// Code configures verification code calls.
type Code struct {
	// Language is used when a send does not name one.
	Language string `yaml:"language"`
	// PrefixText is spoken before the digits, per language.
	PrefixText map[string]string `yaml:"prefix_text"`
}

// Template is a notification text with {1}, {2}... placeholders.
type Template struct {
	ID       string `yaml:"id"`
	Text     string `yaml:"text"`
	Language string `yaml:"language"`
	// Voice overrides the language's voice.
	Voice string `yaml:"voice"`
	// Status is the review state the template starts in when it is first
	// seeded into Redis; afterwards review state lives in Redis.
	Status string `yaml:"status"`
	// Policy fields (config/policy.go, templates/): name, kind code|notify,
	// per-placeholder constraints, DTMF key actions, urgency.
	Name       string            `yaml:"name"`
	Kind       string            `yaml:"kind"`
	Params     []templates.Param `yaml:"params"`
	KeyActions map[string]string `yaml:"key_actions"`
	Urgent     bool              `yaml:"urgent"`
	// Audio fields (config/audio.go, templates/audio.go): source tts|audio|mixed,
	// the recording or the segments, and the engine, rate and volume of speech.
	Source   string              `yaml:"source"`
	Audio    string              `yaml:"audio"`
	Segments []templates.Segment `yaml:"segments"`
	Engine   string              `yaml:"engine"`
	Rate     float64             `yaml:"rate"`
	Volume   float64             `yaml:"volume"`
}

// Duration is a time.Duration written as "1s", "250ms", "2m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use e.g. 500ms, 30s, 2m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

//go:embed defaults.yaml
var defaultsYAML []byte

// Defaults returns the embedded defaults: loopback SIP, local espeak-ng, a
// demo template. They are what `vms demo` runs on.
func Defaults() *Config {
	c, err := parse(defaultsYAML)
	if err != nil {
		panic("config: embedded defaults do not parse: " + err.Error())
	}
	return c
}

// Load reads the YAML file at path over the defaults, applies environment
// overrides and validates the result. path "" means the defaults alone.
// Every problem found is reported in one error.
func Load(path string) (*Config, error) {
	return LoadWith(path, nil)
}

// LoadWith is Load with adjust applied after the environment overrides
// and before validation (nil: none). The demo uses it to give its
// throw-away in-process Redis a throw-away secret.
func LoadWith(path string, adjust func(*Config)) (*Config, error) {
	if path == "" {
		return load("", nil, adjust)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return load(path, data, adjust)
}

// load is LoadWith on the file's bytes (nil: the defaults alone).
func load(path string, data []byte, adjust func(*Config)) (*Config, error) {
	c := Defaults()
	if data != nil {
		// Lists replace the defaults' lists rather than merging into them.
		c.Trunks, c.Templates = nil, nil
		if err := decode(data, c); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	c.ApplyEnv()
	if adjust != nil {
		adjust(c)
	}
	if err := c.Validate(); err != nil {
		if path == "" {
			path = "(defaults)"
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ApplyEnv applies REDIS_URL and the trunks' password_env variables.
func (c *Config) ApplyEnv() {
	if u := os.Getenv("REDIS_URL"); u != "" {
		c.Redis.URL = u
	}
	c.applyPolicyEnv()
	c.applyAudioEnv()
	for i := range c.Trunks {
		if env := c.Trunks[i].PasswordEnv; env != "" {
			if v, ok := os.LookupEnv(env); ok {
				c.Trunks[i].Password = v
			}
		}
	}
}

func parse(data []byte) (*Config, error) {
	c := &Config{}
	return c, decode(data, c)
}

func decode(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(c)
	if err == nil {
		// A second document would be ignored: refuse it rather than
		// silently run without what it says.
		var next yaml.Node
		if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
			if err != nil {
				return err
			}
			return fmt.Errorf("line %d: a second YAML document (after ---): put everything in one", next.Line)
		}
		return nil
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%d problem(s):\n  - %s", len(te.Errors), strings.Join(te.Errors, "\n  - "))
	}
	return err
}
