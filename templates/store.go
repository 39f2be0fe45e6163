package templates

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/audit"
)

// Redis keys of the registry.
const (
	templateKeyPrefix = "vms:tpl:"
	templateIndexKey  = "vms:tpls"
)

func templateKey(id string) string { return templateKeyPrefix + id }

// ErrReview is returned (wrapped) when a review action is not allowed.
var ErrReview = errors.New("review refused")

var templateIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckID checks a template ID.
func CheckID(id string) error {
	if !templateIDRE.MatchString(id) {
		return fmt.Errorf("template id %q: use 1-64 characters from A-Z a-z 0-9 . _ - starting with a letter or digit", id)
	}
	return nil
}

// Digest returns the SHA-256 of t's content: every field except the review
// state. Two templates with the same digest say the same thing.
func (t Template) Digest() string {
	t.Status, t.Reviewer, t.ReviewedAt, t.Reason, t.Findings = "", "", time.Time{}, "", nil
	t.Pins = nil // review state (templates/audio.go)
	t.Version, t.CreatedAt, t.UpdatedAt = 0, time.Time{}, time.Time{}
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// StoreOptions configures a Store.
type StoreOptions struct {
	// Rules are the automated review rules applied on every change.
	Rules Rules
	// Audit receives template changes and reviews; nil records nothing.
	Audit *audit.Log
	// Seed are the templates of the config file, written into Redis before
	// the store's first read (see Seed).
	Seed []Template
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Store is the template registry in Redis, shared by every process. It
// implements Registry. Review state lives only here: a template edited
// after approval (by Put or by a changed config file) goes back to pending.
type Store struct {
	rdb  redis.UniversalClient
	opts StoreOptions

	seedMu sync.Mutex
	seeded bool

	clips ClipChecker // pins recordings on approval (templates/audio.go)
}

// NewStore returns the registry on rdb.
func NewStore(rdb redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Rules.Banned == nil && opts.Rules.VerificationWords == nil {
		opts.Rules = DefaultRules()
	}
	return &Store{rdb: rdb, opts: opts}
}

// Rules returns the review rules (their banned words also apply to
// parameters at send time).
func (s *Store) Rules() Rules { return s.opts.Rules }

// Template implements Registry.
func (s *Store) Template(ctx context.Context, id string) (Template, error) {
	if err := s.ensureSeeded(ctx); err != nil {
		return Template{}, err
	}
	t, _, err := s.read(ctx, s.rdb, id)
	return t, err
}

// List returns every template, by ID.
func (s *Store) List(ctx context.Context) ([]Template, error) {
	if err := s.ensureSeeded(ctx); err != nil {
		return nil, err
	}
	ids, err := s.rdb.SMembers(ctx, templateIndexKey).Result()
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	sort.Strings(ids)
	out := make([]Template, 0, len(ids))
	for _, id := range ids {
		t, _, err := s.read(ctx, s.rdb, id)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (s *Store) read(ctx context.Context, r redis.Cmdable, id string) (Template, string, error) {
	f, err := r.HMGet(ctx, templateKey(id), "t", "seed").Result()
	if err != nil {
		return Template{}, "", fmt.Errorf("template %q: %w", id, err)
	}
	body, _ := f[0].(string)
	seed, _ := f[1].(string)
	if body == "" {
		return Template{}, "", fmt.Errorf("template %q: %w", id, ErrNotFound)
	}
	var t Template
	if err := json.Unmarshal([]byte(body), &t); err != nil {
		return Template{}, "", fmt.Errorf("template %q: stored record is corrupt: %w", id, err)
	}
	return t, seed, nil
}

// change is what an update function decides.
type change struct {
	t       *Template // nil: nothing to write
	seed    string    // new seed digest ("" keeps it)
	event   string    // audit type
	details map[string]string
}

// update runs fn on the current state of a template in an optimistic
// transaction and writes what it returns.
func (s *Store) update(ctx context.Context, id, actor string, fn func(cur Template, seed string, exists bool) (change, error)) (Template, error) {
	var out Template
	var ch change
	var err error
	for try := 0; try < 50; try++ {
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			cur, seed, rerr := s.read(ctx, tx, id)
			exists := rerr == nil
			if rerr != nil && !errors.Is(rerr, ErrNotFound) {
				return rerr
			}
			var ferr error
			ch, ferr = fn(cur, seed, exists)
			if ferr != nil {
				return ferr
			}
			if ch.t == nil {
				out = cur
				if ch.seed != "" && ch.seed != seed {
					_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.HSet(ctx, templateKey(id), "seed", ch.seed)
						return nil
					})
					return err
				}
				return nil
			}
			body, err := json.Marshal(ch.t)
			if err != nil {
				return err
			}
			out = *ch.t
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, templateKey(id), "t", body)
				if ch.seed != "" {
					p.HSet(ctx, templateKey(id), "seed", ch.seed)
				}
				p.SAdd(ctx, templateIndexKey, id)
				return nil
			})
			return err
		}, templateKey(id))
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		return Template{}, err
	}
	if ch.t != nil && ch.event != "" && s.opts.Audit != nil {
		data := map[string]string{"status": string(out.Status), "version": strconv.Itoa(out.Version), "digest": out.Digest()}
		for k, v := range ch.details {
			data[k] = v
		}
		if _, aerr := s.opts.Audit.Record(ctx, ch.event, actor, id, data); aerr != nil {
			return out, aerr
		}
	}
	return out, nil
}

// normalizeContent checks the content fields that must be right before anything
// is stored and fills defaults.
func normalizeContent(t *Template) error {
	if err := CheckID(t.ID); err != nil {
		return err
	}
	k, err := ParseKind(string(t.Kind))
	if err != nil {
		return err
	}
	t.Kind = k
	if err := normalizeAudio(t); err != nil { // templates/audio.go
		return err
	}
	if strings.TrimSpace(t.Text) == "" {
		return fmt.Errorf("template %s: text is empty", t.ID)
	}
	return nil
}

// Put adds a template or changes one. A new template starts pending. A
// change of content (text, kind, language, voice, constraints, key actions,
// urgency) makes it pending again, whatever its state, and is audited; the
// same content again changes nothing. The automated review runs on every
// change and its findings are stored with the template.
func (s *Store) Put(ctx context.Context, t Template, actor string) (Template, error) {
	if err := s.ensureSeeded(ctx); err != nil {
		return Template{}, err
	}
	if err := normalizeContent(&t); err != nil {
		return Template{}, err
	}
	return s.update(ctx, t.ID, actor, func(cur Template, _ string, exists bool) (change, error) {
		return s.edit(cur, exists, t, StatusPending, "")
	})
}

// edit returns the change that puts content t over cur.
func (s *Store) edit(cur Template, exists bool, t Template, initial Status, source string) (change, error) {
	now := s.opts.Now().UTC()
	next := t
	next.Reviewer, next.ReviewedAt, next.Reason = "", time.Time{}, ""
	next.Findings = Check(next, s.opts.Rules)
	next.UpdatedAt = now
	if !exists {
		next.Status, next.Version, next.CreatedAt = initial, 1, now
		if next.Status == StatusApproved {
			next.Reviewer, next.ReviewedAt = source, now
		}
		if next.Status == StatusApproved && HasErrors(next.Findings) {
			next.Status = StatusPending
			next.Reviewer, next.ReviewedAt = "", time.Time{}
			next.Reason = "the automated review found problems: see findings; fix them or approve with --force"
		}
		return change{t: &next, event: "template.added", details: map[string]string{"source": source}}, nil
	}
	if cur.Digest() == t.Digest() {
		return change{}, nil
	}
	next.Status, next.Version, next.CreatedAt = StatusPending, cur.Version+1, cur.CreatedAt
	next.Reason = fmt.Sprintf("edited after review (was %s, version %d): needs a new review", cur.Status, cur.Version)
	return change{t: &next, event: "template.edited",
		details: map[string]string{"previous_status": string(cur.Status), "previous_digest": cur.Digest(), "source": source}}, nil
}

// Review says who acts on a template and why.
type Review struct {
	By     string
	Reason string
	// Version, when set, must be the template's current version: the
	// reviewer acts on what they saw.
	Version int
	// Force approves despite automated review errors (audited).
	Force bool
}

// Approve makes a template sendable. It is refused when the automated
// review found errors (unless Force) or when Version is stale.
func (s *Store) Approve(ctx context.Context, id string, r Review) (Template, error) {
	return s.review(ctx, id, StatusApproved, r)
}

// Reject refuses a template; Reason is required.
func (s *Store) Reject(ctx context.Context, id string, r Review) (Template, error) {
	if strings.TrimSpace(r.Reason) == "" {
		return Template{}, fmt.Errorf("template %s: %w: give the reason for rejecting it", id, ErrReview)
	}
	return s.review(ctx, id, StatusRejected, r)
}

// Disable stops a template from being sent.
func (s *Store) Disable(ctx context.Context, id string, r Review) (Template, error) {
	return s.review(ctx, id, StatusDisabled, r)
}

func (s *Store) review(ctx context.Context, id string, to Status, r Review) (Template, error) {
	if err := s.ensureSeeded(ctx); err != nil {
		return Template{}, err
	}
	if strings.TrimSpace(r.By) == "" {
		return Template{}, fmt.Errorf("template %s: %w: name the reviewer", id, ErrReview)
	}
	pins, err := s.pinForReview(ctx, id, to) // templates/audio.go
	if err != nil {
		return Template{}, err
	}
	return s.update(ctx, id, r.By, func(cur Template, _ string, exists bool) (change, error) {
		if !exists {
			return change{}, fmt.Errorf("template %q: %w", id, ErrNotFound)
		}
		if r.Version != 0 && r.Version != cur.Version {
			return change{}, fmt.Errorf("template %s: %w: it changed since you looked (now version %d, you reviewed %d): show it again", id, ErrReview, cur.Version, r.Version)
		}
		if to == StatusApproved && HasErrors(cur.Findings) && !r.Force {
			var msgs []string
			for _, f := range cur.Findings {
				if f.Severity == SeverityError {
					msgs = append(msgs, f.Message)
				}
			}
			return change{}, fmt.Errorf("template %s: %w: the automated review found problems: %s (fix the template, or approve with force if they are false alarms)", id, ErrReview, strings.Join(msgs, "; "))
		}
		if cur.Status == to && cur.Reason == r.Reason && !pins.changes(cur) {
			return change{}, nil
		}
		next := cur
		if err := pins.apply(&next, cur); err != nil {
			return change{}, err
		}
		now := s.opts.Now().UTC()
		next.Status, next.Reviewer, next.ReviewedAt, next.Reason, next.UpdatedAt = to, r.By, now, r.Reason, now
		details := map[string]string{"previous_status": string(cur.Status), "reason": r.Reason}
		if r.Force {
			details["forced"] = "true"
		}
		return change{t: &next, event: "template." + string(to), details: details}, nil
	})
}

// Seed writes the config file's templates into Redis. A template that is
// not in Redis is created with the status the file gives it. A template
// whose definition in the file changed since it was last seeded is updated
// and goes back to pending; one whose file definition did not change keeps
// whatever was done to it since (edits, reviews). Seeding is idempotent and
// safe to run from many processes at once.
func (s *Store) Seed(ctx context.Context) error {
	for _, def := range s.opts.Seed {
		def := def
		if err := normalizeContent(&def); err != nil {
			return fmt.Errorf("seed templates: %w", err)
		}
		initial := def.Status
		if initial == "" {
			initial = StatusPending
		}
		digest := def.Digest()
		_, err := s.update(ctx, def.ID, "config", func(cur Template, seed string, exists bool) (change, error) {
			if exists && seed == digest {
				return change{}, nil // the file did not change since it was seeded
			}
			ch, err := s.edit(cur, exists, def, initial, "config")
			ch.seed = digest
			if ch.t != nil && exists {
				s.opts.Log.Warn("template changed in the config file: back to pending until reviewed", "template", def.ID)
			}
			return ch, err
		})
		if err != nil {
			return fmt.Errorf("seed template %s: %w", def.ID, err)
		}
	}
	return nil
}

// ensureSeeded seeds once per Store, before its first use.
func (s *Store) ensureSeeded(ctx context.Context) error {
	s.seedMu.Lock()
	defer s.seedMu.Unlock()
	if s.seeded || len(s.opts.Seed) == 0 {
		return nil
	}
	if err := s.Seed(ctx); err != nil {
		return err
	}
	s.seeded = true
	return nil
}
