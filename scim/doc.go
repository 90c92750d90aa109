// Package scim owns the SCIM 2.0 service provider (RFC 7643/7644) mounted at
// /scim/v2: resources, discovery, the filter and PATCH path parsers, the
// PATCH engine, the IdP quirks of Okta and Entra ID, and bearer-token auth.
// It must not decide access or write access changes itself: every write goes
// through the sync.Syncer, and it never imports web or broker.
//
// Group renames: mappings and group sets refer to a group by the name the
// IdP sends in tokens (displayName). When a SCIM PUT or PATCH renames a
// group, the store moves the group's memberships and its organization and
// repository mappings to the new name in the same transaction
// (store.UpdateGroupMembers), so every member keeps exactly the roles the
// group granted, and their live sessions get the new group name at once.
//
// Identity matching: a SCIM user whose email (default) or userName equals
// an existing SSO-created user adopts that user (same ID, same sessions);
// a user already provisioned over SCIM with the same key is a 409
// uniqueness error. Passwords are never stored: groupgate does not
// authenticate with them.
package scim
