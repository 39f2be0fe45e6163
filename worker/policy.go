package worker

import (
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/policy"
	"github.com/vms-project/vms/queue"
)

// This file connects the worker to compliance policy (package policy).

// PolicyFor returns the policy engine of a deployment: consent,
// suppression, frequency limits, quiet hours, the template registry in
// Redis (seeded from cfg) and the audit log.
func PolicyFor(cfg *config.Config, rdb redis.UniversalClient, log *slog.Logger) *policy.Engine {
	e := policy.FromConfig(cfg, rdb, log)
	setClipChecker(cfg, rdb, log, e.Templates()) // audio.go: approval pins recordings
	return e
}

// policyOutcome turns the result of the dial-time policy check into the
// handler's result: a refusal was recorded as blocked (done, no retry); a
// deferral brings the task back at its time (deferRetry).
func policyOutcome(log *slog.Logger, err error) error {
	var in *queue.InputError
	var de *queue.DeferError
	switch {
	case errors.As(err, &in):
		log.Info("blocked by policy before dialing; not dialled", "code", in.Code, "reason", in.Msg)
		return nil
	case errors.As(err, &de):
		log.Info("deferred by policy before dialing", "until", de.Until, "reason", de.Reason)
		return err
	}
	return err
}

// deferDelay wraps a RetryDelayFunc: a *queue.DeferError runs the task
// again at its time.
func deferDelay(next asynq.RetryDelayFunc) asynq.RetryDelayFunc {
	return func(n int, err error, t *asynq.Task) time.Duration {
		var de *queue.DeferError
		if errors.As(err, &de) {
			return max(time.Until(de.Until), time.Second)
		}
		return next(n, err, t)
	}
}

// deferIsFailure wraps an IsFailure: a deferral does not use up a retry.
func deferIsFailure(next func(error) bool) func(error) bool {
	return func(err error) bool {
		var de *queue.DeferError
		if errors.As(err, &de) {
			return false
		}
		return next(err)
	}
}

// isDeferral reports whether a handler error is a policy deferral (not
// worth an error log line).
func isDeferral(err error) bool {
	var de *queue.DeferError
	return errors.As(err, &de)
}
