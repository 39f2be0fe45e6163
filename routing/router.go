// Package routing chooses the trunks a call is placed on and enforces what
// every worker sharing one Redis must respect together: candidate trunks by
// E.164 prefix (longest match first) and priority, skipping trunks that are
// down; per-trunk channel and calls-per-second limits; trunk health from
// consecutive carrier-side failures, with OPTIONS probes after a cool-off;
// the failover/redial verdict of every outcome; and the redial policy.
package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony"
)

// ErrNoRoute says no configured trunk serves a number.
var ErrNoRoute = errors.New("no trunk serves this number")

// ErrAllDown says every trunk serving a number is down.
var ErrAllDown = errors.New("every trunk serving this number is down")

// Options configures a Router.
type Options struct {
	FailureThreshold int
	Cooloff          time.Duration
	ProbeInterval    time.Duration
	ChannelLease     time.Duration
	Log              *slog.Logger
}

// Router picks trunks for calls. It is safe for concurrent use.
type Router struct {
	trunks []*Trunk
	Health *Health
	Limits *Limits
	prober Prober
	opts   Options
	log    *slog.Logger
}

// New returns a Router over trunks (in config order) on rdb. prober may be
// nil: down trunks then come back only when their state is reset.
func New(rdb redis.UniversalClient, trunks []*Trunk, prober Prober, opts Options) *Router {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for i, t := range trunks {
		t.order = i
	}
	return &Router{trunks: trunks, Health: NewHealth(rdb, opts.FailureThreshold, opts.Cooloff),
		Limits: NewLimits(rdb, opts.ChannelLease, log), prober: prober, opts: opts, log: log}
}

// Trunks returns every trunk, in config order.
func (r *Router) Trunks() []*Trunk { return r.trunks }

// Route returns the trunks that may take a call to number, best first:
// longest matching prefix, then lowest priority, then config order; trunks
// that are down are left out. It returns an error wrapping ErrNoRoute when
// no trunk serves the number and ErrAllDown when every one that does is down.
func (r *Router) Route(ctx context.Context, number string) ([]*Trunk, error) {
	var serving []*Trunk
	for _, t := range r.trunks {
		if t.match(number) >= 0 {
			serving = append(serving, t)
		}
	}
	if len(serving) == 0 {
		return nil, fmt.Errorf("%s: %w: add its country prefix to a trunk's prefixes", queue.MaskNumber(number), ErrNoRoute)
	}
	slices.SortStableFunc(serving, func(a, b *Trunk) int {
		if ma, mb := a.match(number), b.match(number); ma != mb {
			return mb - ma
		}
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		return a.order - b.order
	})
	names := make([]string, len(serving))
	for i, t := range serving {
		names[i] = t.Name
	}
	down, err := r.Health.Down(ctx, names)
	if err != nil {
		return nil, err
	}
	up := slices.DeleteFunc(slices.Clone(serving), func(t *Trunk) bool { return down[t.Name] })
	if len(up) == 0 {
		return nil, fmt.Errorf("%s: %w (%s): they are probed with OPTIONS after routing.cooloff",
			queue.MaskNumber(number), ErrAllDown, strings.Join(names, ", "))
	}
	return up, nil
}

// Report updates the trunk's health from a call's outcome and returns its
// verdict.
func (r *Router) Report(ctx context.Context, t *Trunk, res telephony.Result) telephony.Verdict {
	v := telephony.VerdictFor(res)
	if v.TrunkFailure {
		marked, err := r.Health.Failure(ctx, t.Name)
		if err != nil {
			r.log.Warn("trunk health", "trunk", t.Name, "err", err)
		} else if marked {
			r.log.Warn("trunk marked down: it takes no calls until the cool-off ends and it answers OPTIONS",
				"trunk", t.Name, "failures", r.opts.FailureThreshold, "cooloff", r.opts.Cooloff, "last", res.Reason)
		}
	} else if res.Status != queue.StatusFailed || res.SIPCode != 0 {
		// The trunk carried the call to the callee's side (or answered
		// with a callee's final response): its run of failures ends.
		if err := r.Health.Success(ctx, t.Name); err != nil {
			r.log.Warn("trunk health", "trunk", t.Name, "err", err)
		}
	}
	return v
}

// RunProbes probes down trunks whose cool-off is over, every
// ProbeInterval, until ctx ends. One worker probes a given trunk at a time.
func (r *Router) RunProbes(ctx context.Context) {
	if r.prober == nil {
		return
	}
	tk := time.NewTicker(r.opts.ProbeInterval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			r.ProbeDue(ctx)
		}
	}
}

// ProbeDue probes, once, each down trunk whose cool-off is over.
func (r *Router) ProbeDue(ctx context.Context) {
	timeout := max(r.opts.ProbeInterval, 5*time.Second)
	for _, t := range r.trunks {
		due, err := r.Health.claimProbe(ctx, t.Name, timeout+time.Second)
		if err != nil || !due {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		code, err := r.prober.Options(pctx, t.Trunk)
		cancel()
		ok := err == nil && alive(code)
		if ok {
			r.log.Info("trunk answered OPTIONS: taking calls again", "trunk", t.Name, "sip_code", code)
		} else {
			r.log.Warn("trunk probe failed: cool-off restarts", "trunk", t.Name, "sip_code", code, "err", err)
		}
		if err := r.Health.probed(context.WithoutCancel(ctx), t.Name, ok); err != nil {
			r.log.Warn("trunk health", "trunk", t.Name, "err", err)
		}
	}
}
