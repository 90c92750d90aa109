// Package api is groupgate's Connect API: the services of the Buf Schema
// Registry's buf.alpha.registry.v1alpha1 package that groupgate serves,
// wire-identical to the BSR's published protos (wire_test.go proves it),
// groupgate's own services in groupgate.v1 (access explanations, previews,
// audit, sessions, listings with the sources of roles), and the
// authentication of their callers (bearer tokens, and the browser session
// cookie with CSRF checks).
//
// It depends on sync, store and session only. It owns no HTTP server: web
// mounts it (web.WithMount) and must not import it. It does not decide
// access itself: every change that moves a user's access goes through sync,
// and it never proxies a request to the upstream application. Nothing may
// be added to buf.alpha.registry.v1alpha1 that the BSR does not define;
// groupgate's extras go to groupgate.v1.
package api
