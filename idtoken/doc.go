// Package idtoken signs the identity JWT that groupgate gives upstreams
// (X-Auth-Request-Jwt) and publishes its keys (/.well-known/jwks.json).
// It owns the key set's rotation and its sealing at rest; the key set lives
// in the store so that every replica signs with, and publishes, the same
// keys. It knows neither HTTP routing nor sessions: web hands it a Subject.
package idtoken
