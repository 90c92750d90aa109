package postgres

import (
	stdsync "sync"
	"time"
)

// cursors remember where the pages of a listing in the default order
// (creation, then ID) ended, so that the next page of a walk (an IdP
// reading every user, 100 at a time) starts after the last row it saw
// instead of counting its startIndex off from the first: keyset
// pagination behind SCIM's startIndex (issue 15). RFC 7644 §3.4.2.4 lets
// pages change between requests ("Clients SHOULD never assume repeatable
// results"); a walk over a changing table then neither skips nor repeats
// rows that stayed, which OFFSET does not promise either. A request whose
// startIndex no page ended at (another replica's walk, a jump, an entry
// older than cursorTTL) is served by OFFSET as before.
type cursors struct {
	mu stdsync.Mutex
	m  map[string]cursor
}

// cursor is the sort key of the last row of a page.
type cursor struct {
	created time.Time
	id      string
	at      time.Time
}

const (
	cursorTTL = 30 * time.Second
	cursorMax = 1024
)

func newCursors() *cursors { return &cursors{m: map[string]cursor{}} }

// take returns and forgets the cursor of a page ending at key.
func (c *cursors) take(key string, now time.Time) (cursor, bool) {
	if c == nil {
		return cursor{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.m[key]
	delete(c.m, key)
	return cur, ok && now.Sub(cur.at) <= cursorTTL
}

func (c *cursors) put(key string, cur cursor) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= cursorMax {
		for k, e := range c.m {
			if cur.at.Sub(e.at) > cursorTTL {
				delete(c.m, k)
			}
		}
		if len(c.m) >= cursorMax {
			clear(c.m)
		}
	}
	c.m[key] = cur
}
