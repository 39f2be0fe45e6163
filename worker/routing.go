package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/routing"
	"github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/tts"
)

// This file is the handler's routing: candidate trunks, the shared limits,
// the failover loop, trunk health and redial scheduling.

// route returns the candidate trunks of m, best first, holding a channel
// slot and a calls-per-second token of the first. A saturated trunk returns
// a *routing.SaturatedError, which the server reschedules without counting
// a failure; a number no trunk can take is ended here (never dialled).
func (h *Handler) route(ctx context.Context, log *slog.Logger, m queue.Message) ([]*routing.Trunk, *routing.Slot, error) {
	trunks, err := h.Router.Route(ctx, m.To)
	if errors.Is(err, routing.ErrNoRoute) || errors.Is(err, routing.ErrAllDown) {
		status := queue.StatusFailed
		if errors.Is(err, routing.ErrAllDown) {
			status = queue.StatusUnreachable
		}
		log.Error("message cannot be routed", "err", err)
		if aerr := h.Queue.Abandon(ctx, m.Key(), h.Owner, status, err.Error()); aerr != nil {
			return nil, nil, aerr
		}
		return nil, nil, fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return nil, nil, err
	}
	slot, err := h.Router.Limits.Acquire(ctx, trunks[0], slotMember(m.ID), h.LimitWait)
	if err != nil {
		if sat, ok := routing.IsSaturated(err); ok {
			log.Info("trunk saturated: message rescheduled", "trunk", sat.Trunk, "limit", sat.What, "retry_after", sat.RetryAfter)
		}
		return nil, nil, err
	}
	return trunks, slot, nil
}

// dial places attempt of m on trunks in order, holding slot for the first:
// the next trunk is tried only after a carrier-side failure before any 18x.
// Every INVITE is an entry of the message's attempts; the attempt's outcome
// is the last call's, and a redial is scheduled when the policy allows.
func (h *Handler) dial(ctx context.Context, log *slog.Logger, m queue.Message, attempt int,
	msg *message, trunks []*routing.Trunk, slot *routing.Slot) error {
	var (
		res   telephony.Result
		tries []queue.Attempt
		used  string
	)
	for i, tr := range trunks {
		if i > 0 {
			var err error
			if slot, err = h.Router.Limits.Acquire(ctx, tr, slotMember(m.ID), h.LimitWait); err != nil {
				res.Reason += fmt.Sprintf("; next trunk %s not tried: %v", tr.Name, err)
				break
			}
		}
		used = tr.Name
		res = h.Dialer.Call(ctx, telephony.CallRequest{
			MessageID: m.ID, To: m.To, Trunk: tr.ForCall(m.To), Audio: msg.audio, Actions: msg.actions, Ack: msg.ack,
			RingTimeout: h.RingTimeout, MaxDuration: h.MaxDuration, MediaTimeout: h.MediaTimeout,
			Progress: &progress{h: h, id: m.Key(), attempt: attempt, trunk: tr.Name, log: log},
		})
		slot.Release()
		tries = append(tries, queue.Attempt{Attempt: attempt, Try: i + 1, Trunk: tr.Name, CallID: res.CallID,
			Status: res.Status, SIPCode: res.SIPCode, SIPReason: res.SIPReason, Reason: res.Reason,
			InviteAt: res.InviteAt, RingingAt: res.RingingAt, AnsweredAt: res.AnsweredAt, EndedAt: res.EndedAt,
			BillableMS: res.BillableMS})
		log.Info("call ended", "trunk", tr.Name, "status", res.Status, "sip_code", res.SIPCode, "billable_ms", res.BillableMS,
			"hung_up_by", res.HungUpBy, "call_id", res.CallID, "reason", res.Reason)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		v := h.Router.Report(rctx, tr, res)
		cancel()
		if !v.TryNextTrunk || ctx.Err() != nil || i == len(trunks)-1 {
			break
		}
		log.Warn("trunk failed before reaching the callee: trying the next trunk", "trunk", tr.Name, "next", trunks[i+1].Name)
	}

	if res.OptedOut && h.Suppressor != nil {
		// The callee asked never to be called again by this app.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := h.Suppressor.Suppress(sctx, m.AppID, m.To, "pressed the opt-out key during call "+res.CallID); err != nil {
			log.Error("opt-out not recorded in the suppression list", "err", err)
			res.Reason = strings.TrimPrefix(res.Reason+"; opt-out not recorded: "+err.Error(), "; ")
		}
		cancel()
	}
	next := h.Redial.Next(m.Kind, attempt, res, time.Now())
	if next != nil && ctx.Err() == nil {
		// The task first, then the record: a task without a queued record
		// finds nothing to claim, whereas a queued record without a task
		// would wait forever.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := h.Queue.EnqueueRedial(ectx, m, next.Attempt, next.At); err != nil {
			log.Error("redial not scheduled", "err", err)
			res.Reason += "; redial not scheduled: " + err.Error()
			next = nil
		} else {
			log.Info("redial scheduled", "next_attempt", next.Attempt, "at", next.At)
		}
		cancel()
	} else {
		next = nil
	}
	return h.finish(m, attempt, used, res, tries, next)
}

// slotMember names one delivery's channel slot: unique, so that a
// duplicate delivery of the same task never frees the winner's slot.
func slotMember(id string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return id + "/" + hex.EncodeToString(b[:])
}

// codecs is every codec any trunk offers, for rendering.
func (h *Handler) codecs() []tts.Codec {
	var out []tts.Codec
	for _, t := range h.Router.Trunks() {
		for _, c := range t.Codecs {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// retryDelay is the asynq RetryDelayFunc: a saturated trunk's task comes
// back when a slot or token is expected, other failures back off.
func retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if sat, ok := routing.IsSaturated(err); ok {
		return sat.RetryAfter
	}
	return time.Duration(n+1) * 2 * time.Second
}

// isFailure is the asynq IsFailure: waiting for a saturated trunk is not a
// failure and does not use up the task's retries.
func isFailure(err error) bool {
	_, sat := routing.IsSaturated(err)
	return !sat
}

// NewRouter builds the router of a worker: its trunks, health and limits in
// rdb, probing down trunks with OPTIONS from prober (the worker's Dialer).
func NewRouter(cfg *config.Config, rdb redis.UniversalClient, trunks []*routing.Trunk, prober routing.Prober, log *slog.Logger) *routing.Router {
	r := cfg.Routing
	return routing.New(rdb, trunks, prober, routing.Options{
		FailureThreshold: r.FailureThreshold, Cooloff: r.Cooloff.D(), ProbeInterval: r.ProbeInterval.D(),
		ChannelLease: r.ChannelLease.D(), Log: log,
	})
}

// startProbes runs the router's OPTIONS probes until stopProbes.
func (w *Worker) startProbes() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w.stopProbes = func() {
		cancel()
		<-done
	}
	go func() {
		defer close(done)
		w.Handler.Router.RunProbes(ctx)
	}()
}
