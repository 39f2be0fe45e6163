// Package sim is a carrier simulator: a real SIP user agent server (sipgo, UDP)
// with real RTP media (pion/rtp) that vms dials into in tests, `vms demo`,
// `vms carrier-sim` and benchmarks, so the whole call path can be seen working
// without a carrier account.
//
// # Scenarios
//
// How the simulator answers an INVITE depends on the called number, the user
// part of the Request-URI. An exact match in Config.Scenarios wins; otherwise
// the last two digits of the number choose:
//
//	last digits  scenario     what the simulator does
//	-----------  -----------  ----------------------------------------------------
//	00           answer       180, then 200 OK; holds until the caller sends BYE
//	01           busy         486 Busy Here
//	02           ring         180 Ringing, then nothing until CANCEL (-> 487);
//	                          480 after 3 minutes, a carrier's no-answer timer
//	03           decline      603 Decline
//	04           notfound     404 Not Found
//	05           unavailable  503 Service Unavailable
//	06           early        183 with SDP and early media, 200 OK after 1 s
//	07           challenge    401 digest challenge; right credentials: as answer;
//	                          wrong credentials: 403 Forbidden; no retry within
//	                          2 s: the call is recorded as ended with 401
//	11 ... 19    hangup:Ns    200 OK, then the simulator sends BYE N s later
//	anything else answer
//
// For example +8613800000001 is busy and +8613800000013 is answered and hung up
// by the simulator after 3 seconds. Scenarios are written as "kind" or
// "kind:duration" (see ParseScenario): "hangup:3s", "early:500ms".
//
// Every call that gets an INVITE with an SDP offer and is not refused is
// answered with the caller's first offered codec that the simulator supports
// (PCMU, PCMA), plus telephone-event if offered; an offer with neither gets
// 488 Not Acceptable Here. Digest credentials default to user "vms",
// password "secret", realm "carrier-sim".
//
// # What is recorded
//
// Each call becomes a CallRecord: SIP outcome, timestamps, who hung up, the
// negotiated codec and RTP statistics (packets, sequence gaps, out-of-order
// packets, marker bits, timestamp steps, RFC 3550 interarrival jitter, DTMF
// digits received as RFC 4733 events). While a call has media the simulator
// sends 20 ms silence frames to the caller's SDP address, as carriers send
// media and callers must drain it. With Config.RecordDir set, the received
// audio is decoded to a 16-bit 8 kHz mono WAV file and a JSON summary is
// written next to it, both named after the call.
package sim
