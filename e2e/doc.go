// Package e2e holds integration tests that run several full groupgate
// replicas, wired as cmd/groupgate wires them, against one PostgreSQL and
// one Redis. It has no production code and must not be imported.
package e2e
