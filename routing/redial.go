package routing

import (
	"fmt"
	"slices"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony"
)

// RedialPolicy is config.Routing.Redial: per message kind, which statuses
// are redialled, how many times and after what delay.
type RedialPolicy map[queue.Kind]config.Redial

// Next returns the attempt to schedule after attempt ended with res, or nil:
// only when the table allows a redial of the status, the kind's policy names
// it and attempts remain (attempt 1 plus Max redials).
func (p RedialPolicy) Next(kind queue.Kind, attempt int, res telephony.Result, now time.Time) *queue.NextAttempt {
	pol, ok := p[kind]
	if !ok || pol.Max <= 0 || attempt >= 1+pol.Max || !telephony.VerdictFor(res).Redial ||
		!slices.Contains(pol.On, string(res.Status)) {
		return nil
	}
	// asynq schedules in whole seconds: round up so that a redial never
	// comes before its delay.
	at := now.Add(pol.Delay.D())
	if t := at.Truncate(time.Second); !t.Equal(at) {
		at = t.Add(time.Second)
	}
	return &queue.NextAttempt{Attempt: attempt + 1, At: at,
		Reason: fmt.Sprintf("attempt %d ended %s; redial %d of %d at %s",
			attempt, res.Status, attempt, pol.Max, at.UTC().Format(time.RFC3339))}
}
