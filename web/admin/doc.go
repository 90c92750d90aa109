// Package admin is the /admin/ web console: server-rendered pages where a
// signed-in person sees their own access and, as far as the API's rules let
// them, manages organizations, repositories, tokens and the audit log.
//
// It authenticates by the browser session, authorizes with sync's
// decisions (the API's rules), and writes only through sync. It must not
// decide access itself, reach into package api, or write to the store.
package admin
