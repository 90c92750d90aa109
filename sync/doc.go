// Package sync owns the access model: roles and their order, the sources
// that grant them, resolution of a user's effective roles, and the Syncer that
// writes access changes and pushes the recomputed snapshots to live sessions.
// It must not know HTTP, login protocols or how sessions are stored.
package sync
