// Package graph reads a user's group memberships from Microsoft Graph, for
// Entra ID logins whose token or assertion overflowed its groups (the
// "group overage"). It owns the Graph HTTP calls, paging and limits; it
// knows neither login protocols nor groupgate's routes or storage.
package graph
