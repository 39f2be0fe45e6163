// Package interop holds the tests that place vms calls against real SIP
// peers installed from Debian, not just vms's own carrier simulator:
//
//   - kamailio as a digest-authenticating proxy (407 challenge, record-routing)
//     in front of telephony/sim;
//   - baresip as an auto-answering callee that records the audio it receives.
//
// The tests start the peers themselves on free loopback ports, with their
// configuration written into a temporary directory, and stop them when the
// test ends. A peer that is not installed skips its test on a developer's
// machine (with the apt-get command to install it) and fails it when the
// environment variable CI is set: `make test` installs both
// (scripts/ensure-deps.sh), so CI never skips them.
//
// The package has no non-test code.
package interop
