//go:build race

package web_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts vary by a few between runs.
const raceEnabled = true
