// Package e2e holds black-box tests of the whole service: they build the vms
// binary once per `go test` run and, per test, start the real processes on
// loopback — a private redis-server (TCP, AOF with appendfsync always), the
// carrier simulator (`vms carrier-sim`), `vms api` and one or more
// `vms worker` — then send messages through the signed HTTP API (or the CLI)
// and check what every side saw: the records (GET /v1/calls/{id}), the
// simulator's per-call JSON summaries (INVITEs per number, who hung up, when),
// the signed status callbacks a test HTTP receiver verified, and the CDRs
// (`vms billing report` / `vms billing reconcile` against the simulator's
// view as the carrier's CDR export).
//
// Run:
//
//	go test ./e2e/                        # everything (also part of make test)
//	go test -run TestCallbacksEndToEnd ./e2e/
//	go test -run TestFaults ./e2e/        # make test-faults
//	VMS_E2E_KEEP=1 go test -v -run 'TestFaults/redis_outage' ./e2e/   # keep logs and dirs
//
// Tests need redis-server and espeak-ng on PATH. Tests run in parallel, each
// with its own Redis, ports and temporary directory; as they mostly wait on
// calls, the package raises -test.parallel to 4 unless it is given. Every
// process a test starts is killed by PID when the test ends; a failing test
// prints the tail of every process's log.
//
// The harness (harness_test.go, redisproxy_test.go) is meant to be extended:
// StartStack with Options (scenarios per number, config overrides by dotted
// key, workers, Redis through a proxy, no API); Stack.StartWorker /
// StartAPI, Proc.Kill / Term / Signal / WaitLog; Redis.Kill / Restart /
// DownFor / Freeze / Thaw / FreezeFor / Client; Sim.Calls / CallsTo /
// WaitCall / Flush / Stop; Receiver.Events / All / Unsigned; Stack.SendTTS /
// SendCode / SendCLI / Get / StatusCLI / WaitRecord / TryWaitRecord /
// WaitStatus / WaitTerminal / WaitTerminalCLI / Cancel / History / Vms;
// checks Stack.CheckCallbacks (ExpectedCallbacks), CheckInvites, CheckCDRs
// (CDRs, BillingReport), Reconcile / CheckReconcile, CheckFaultInvariants;
// RedisProxy (StartRedisProxy, Add, Log, Trace) with Rules (Command, Match,
// SkipErrors, Times; Fired, Dropped). A child process built with -race that
// reports a data race fails its test.
package e2e
