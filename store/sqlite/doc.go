// Package sqlite is the embedded store.Store backend on modernc.org/sqlite
// (pure Go): schema migrations, WAL, serialized write transactions.
// It owns only persistence; it must not decide access or know its callers.
package sqlite
