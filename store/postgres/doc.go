// Package postgres implements store.Store on PostgreSQL through pgx, for
// production deployments where several replicas share one database.
// It owns the SQL schema and its embedded migrations (applied under an
// advisory lock); it must not decide access or know its consumers.
package postgres
