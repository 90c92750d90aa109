// Package web is groupgate's HTTP surface: login and callback, logout,
// forward-auth, reverse proxy, the Connect API, admin UI, health and metrics.
// It wires other packages to routes; it does not decide access itself.
package web
