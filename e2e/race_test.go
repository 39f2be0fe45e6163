//go:build race

package e2e

// raceEnabled: the test binary was built with -race, so vms is too.
const raceEnabled = true
