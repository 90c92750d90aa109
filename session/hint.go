package session

// IDHint shows the end of a session ID: enough to tell sessions apart in
// listings (/whoami, the API's session listing), useless as a credential.
func IDHint(id string) string {
	const n = 6
	if len(id) <= n {
		return ""
	}
	return "…" + id[len(id)-n:]
}
