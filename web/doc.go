// Package web is groupgate's HTTP surface: login and callback, logout,
// forward-auth, reverse proxy, admin UI, health and metrics. Other packages
// (the Connect API in api, SCIM) are mounted on it through WithMount.
// It wires other packages to routes; it does not decide access itself.
package web
