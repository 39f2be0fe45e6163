package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/policy"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/routing"
	"github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/tts"
)

// Worker is one worker process: a SIP user agent and an asynq server that
// runs Handler for up to worker.concurrency messages at once.
type Worker struct {
	Handler *Handler
	Dialer  *telephony.Dialer
	server  *asynq.Server
	log     *slog.Logger
	drain   time.Duration

	// Calls run on callCtx (not asynq's context, see Start); cancelling it
	// hangs up every call in progress, which is then recorded and its task
	// completed. asynq's own shutdown timeout would only requeue a task and
	// leave its handler running.
	callCtx    context.Context
	cancelCall context.CancelFunc
	active     atomic.Int64

	// stopProbes ends the trunk OPTIONS probes started by Start (routing.go).
	stopProbes func()
	// background runs the journal replayer and the reaper (heartbeat,
	// dead workers' calls, orphan sweep) until stopBackground.
	stopBackground context.CancelFunc
	background     sync.WaitGroup
}

// New builds a worker from the configuration. It binds the SIP socket but
// takes no jobs until Start.
func New(cfg *config.Config, rdb redis.UniversalClient, log *slog.Logger) (*Worker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var trunks []*routing.Trunk
	var sipTrunks []telephony.Trunk
	for _, ct := range cfg.Trunks {
		trunk, err := TrunkFromConfig(ct)
		if err != nil {
			return nil, err
		}
		trunks = append(trunks, routing.NewTrunk(ct, trunk))
		sipTrunks = append(sipTrunks, trunk)
	}
	tlsConf, err := telephony.ClientTLS(sipTrunks)
	if err != nil {
		return nil, err
	}
	renderer, clips, err := newAudio(cfg, rdb, log) // audio.go
	if err != nil {
		return nil, err
	}
	_, listen, err := cfg.SIP.ListenAddr()
	if err != nil {
		return nil, fmt.Errorf("sip.listen: %w", err)
	}
	dialer, err := telephony.NewDialer(telephony.Config{
		Listen: listen, PublicHost: cfg.SIP.PublicHost, UserAgent: cfg.SIP.UserAgent,
		RTPPortMin: cfg.RTP.PortMin, RTPPortMax: cfg.RTP.PortMax, RTPAcceptFrom: cfg.RTP.AcceptFrom, Logger: log, TLS: tlsConf,
	})
	if err != nil {
		return nil, err
	}
	pol := PolicyFor(cfg, rdb, log) // policy.go
	pol.Templates().SetClipChecker(clips)
	q := newQueueClient(cfg, rdb, pol)
	fail := func(err error) (*Worker, error) {
		_ = dialer.Close()
		return nil, err
	}
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	durability, err := queue.CheckDurability(dctx, rdb, cfg.Redis.Durability, cfg.Redis.DurabilityTimeout.D(), log)
	cancel()
	if err != nil {
		return fail(err)
	}
	host, _ := os.Hostname()
	owner := queue.NewWorkerID(host, os.Getpid())
	jrnl, err := openJournal(cfg.Worker.JournalDir, owner, q, log)
	if err != nil {
		return fail(err)
	}
	h := &Handler{
		Queue: q, Dialer: dialer, Renderer: renderer, Clips: clips, Templates: pol.Templates(),
		Router:     NewRouter(cfg, rdb, trunks, dialer, log),
		Redial:     routing.RedialPolicy{queue.KindCode: cfg.Routing.PolicyFor("code"), queue.KindTTS: cfg.Routing.PolicyFor("tts")},
		LimitWait:  cfg.Routing.LimitWait.D(),
		Suppressor: pol,
		Speech: Speech{CodePrefix: cfg.Code.PrefixText, Voices: cfg.TTS.Voices, RepeatPause: cfg.Call.RepeatPause.D(),
			ConfirmText: cfg.Call.ConfirmText,
			SegmentGap:  cfg.Audio.SegmentGap.D(), LanguageEngines: cfg.Audio.LanguageEngines},
		RingTimeout: cfg.Call.RingTimeout.D(), MediaTimeout: cfg.Call.MediaTimeout.D(), MaxDuration: cfg.Call.MaxDuration.D(), Log: log,
		Owner: owner, Durability: durability, Journal: jrnl,
	}
	w := &Worker{Handler: h, Dialer: dialer, log: log, drain: cfg.Worker.DrainTimeout.D()}
	w.callCtx, w.cancelCall = context.WithCancel(context.Background())
	w.server = asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       cfg.Worker.Concurrency,
		Queues:            queue.Queues,
		TaskCheckInterval: cfg.Worker.PollInterval.D(),
		// Shutdown drains calls itself before asynq's shutdown starts.
		ShutdownTimeout: hangupGrace,
		// A saturated trunk reschedules without using up a retry (routing.go).
		// A policy deferral (quiet hours) too (policy.go).
		RetryDelayFunc: deferDelay(retryDelay),
		IsFailure:      deferIsFailure(isFailure),
		// Rescheduled tasks and redials become due within this.
		DelayedTaskCheckInterval: time.Second,
		Logger:                   queue.AsynqLogger{L: log},
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			if _, sat := routing.IsSaturated(err); sat || isDeferral(err) {
				return // logged by the handler at info
			}
			id, _ := asynq.GetTaskID(ctx)
			log.Error("message task failed", "message_id", id, "err", err)
		}),
	})
	return w, nil
}

// NewQueueClient returns the queue client configured as workers and senders share it.
func NewQueueClient(cfg *config.Config, rdb redis.UniversalClient) *queue.Client {
	return newQueueClient(cfg, rdb, PolicyFor(cfg, rdb, nil))
}

func newQueueClient(cfg *config.Config, rdb redis.UniversalClient, pol *policy.Engine) *queue.Client {
	langs := map[string]bool{}
	for l := range cfg.Code.PrefixText {
		langs[l] = true
	}
	return queue.NewClient(rdb, queue.Options{
		Templates:       pol.Templates(),
		Policy:          pol,
		Retention:       cfg.Redis.Retention.D(),
		TaskTimeout:     cfg.Call.RingTimeout.D() + cfg.Call.MaxDuration.D() + 2*time.Minute,
		DefaultLanguage: cfg.Code.Language,
		Languages:       langs,
	})
}

// TrunkFromConfig converts a configured trunk.
func TrunkFromConfig(t config.Trunk) (telephony.Trunk, error) {
	var u sip.Uri
	if err := sip.ParseUri(t.URI, &u); err != nil {
		return telephony.Trunk{}, fmt.Errorf("trunk %s: uri %q: %w", t.Name, t.URI, err)
	}
	if u.Port == 0 {
		u.Port = 5060
	}
	tr := telephony.Trunk{Name: t.Name, URI: u, Transport: t.Transport, Username: t.Username,
		Password: t.Password, CallerID: t.CallerID, TLSCA: t.TLSCA, TLSServerName: t.TLSServerName,
		FromDomain: t.FromDomain, AuthUsername: t.AuthUsername, Realm: t.Realm}
	for _, c := range t.Codecs {
		codec, err := tts.ParseCodec(c)
		if err != nil {
			return telephony.Trunk{}, fmt.Errorf("trunk %s: %w", t.Name, err)
		}
		tr.Codecs = append(tr.Codecs, codec)
	}
	return tr, nil
}

// Start replays the journals of workers that died on this journal_dir,
// then begins taking jobs.
func (w *Worker) Start() error {
	h := w.Handler
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := h.Journal.recover(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	bctx, stop := context.WithCancel(context.Background())
	w.stopBackground = stop
	rp := &reaper{q: h.Queue, self: h.Owner, limits: h.Router.Limits, dialer: w.Dialer, rec: h.Journal, log: w.log}
	for _, run := range []func(context.Context){h.Journal.run, rp.run} {
		w.background.Add(1)
		go func() {
			defer w.background.Done()
			run(bctx)
		}()
	}
	mux := asynq.NewServeMux()
	mux.Handle(queue.TaskSend, asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		w.active.Add(1)
		defer w.active.Add(-1)
		// The call runs on the worker's own context, not asynq's: asynq
		// cancels a handler whose lease it could not extend (Redis out of
		// reach), and a call in progress must play to its end then.
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		stop := context.AfterFunc(w.callCtx, cancel)
		defer stop()
		return h.ProcessTask(cctx, t)
	}))
	if err := w.server.Start(mux); err != nil {
		w.stopBackground()
		w.background.Wait()
		return fmt.Errorf("start worker: %w", err)
	}
	w.startProbes()
	for _, t := range w.Handler.Router.Trunks() {
		// Host and port only: a URI may carry credentials.
		w.log.Info("trunk", "trunk", t.Name, "host", fmt.Sprintf("%s:%d", t.URI.Host, t.URI.Port), "transport", t.Transport, "prefixes", t.Prefixes,
			"priority", t.Priority, "max_channels", t.MaxChannels, "cps", t.CPS)
	}
	w.log.Info("worker started", "sip", w.Dialer.Addr().String(), "trunks", len(w.Handler.Router.Trunks()))
	return nil
}

// Shutdown stops taking jobs, lets calls in progress finish (up to
// worker.drain_timeout), then closes the SIP user agent.
func (w *Worker) Shutdown() {
	w.server.Stop() // no new jobs
	if !w.waitIdle(w.drain) {
		w.log.Warn("drain timeout: hanging up calls still in progress", "calls", w.active.Load())
		w.cancelCall()
		if !w.waitIdle(hangupGrace) {
			w.log.Error("calls did not end after hang-up; asynq will requeue them (their records say they were dialled)")
		}
	}
	w.server.Shutdown()
	w.cancelCall()
	if w.stopProbes != nil {
		w.stopProbes()
	}
	// Give Redis a last chance at what waits in the journal; what stays is
	// replayed by the next worker started on this journal_dir.
	for deadline := time.Now().Add(hangupGrace); w.Handler.Journal.Pending() > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if w.stopBackground != nil {
		w.stopBackground()
		w.background.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = w.Handler.Queue.StopBeating(ctx, w.Handler.Owner)
	cancel()
	w.Handler.Journal.close()
	_ = w.Dialer.Close()
}

// hangupGrace is how long hanging up and recording a call may take.
const hangupGrace = 8 * time.Second

// waitIdle waits until no handler runs, up to d.
func (w *Worker) waitIdle(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for w.active.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
