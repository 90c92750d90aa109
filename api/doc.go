// Package api is groupgate's Connect API: the services wire-compatible with
// the Buf Schema Registry's buf.alpha.registry.v1alpha1 package, and
// authentication of their callers (bearer tokens, and the browser session
// cookie with CSRF checks).
//
// It depends on sync, store and session only. It owns no HTTP server: web
// mounts it (web.WithMount) and must not import it. It does not decide
// access itself: every change that moves a user's access goes through sync,
// and it never proxies a request to the upstream application.
package api
