// Package groupgate holds the nouns every other package shares: users,
// groups, organizations, repositories, roles, mappings, the login Identity,
// and the one error type. It imports nothing of ours and does no I/O.
package groupgate
