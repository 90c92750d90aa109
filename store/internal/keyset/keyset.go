package keyset

import (
	"strconv"
	"sync"
	"time"
)

// Cursors remember, per listing and position, the sort key of the last
// row of a page: keyset pagination behind SCIM's startIndex (issue 15).
// RFC 7644 §3.4.2.4 lets pages change between requests ("Clients SHOULD
// never assume repeatable results"); a walk over a changing table then
// neither skips nor repeats rows that stayed, which OFFSET does not
// promise either. A request whose startIndex no page ended at (another
// replica's walk, a jump, an entry older than TTL) is served by OFFSET.
type Cursors struct {
	mu sync.Mutex
	m  map[string]Cursor
}

// Cursor is the sort key of the last row of a page, and when it was put.
type Cursor struct {
	Created time.Time
	ID      string
	at      time.Time
}

const (
	// TTL bounds how long a cursor waits for the next page of its walk.
	TTL = 30 * time.Second
	// maxCursors bounds the cursors kept, whatever the number of walks.
	maxCursors = 1024
)

// New returns an empty set of cursors.
func New() *Cursors { return &Cursors{m: map[string]Cursor{}} }

// Key is the key of the page of listing that starts at offset.
func Key(listing string, offset int) string {
	return listing + "\x00" + strconv.Itoa(offset)
}

// Take returns and forgets the cursor of a page ending at key, if it is
// younger than TTL at now. A nil *Cursors has none.
func (c *Cursors) Take(key string, now time.Time) (Cursor, bool) {
	if c == nil {
		return Cursor{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.m[key]
	delete(c.m, key)
	return cur, ok && now.Sub(cur.at) <= TTL
}

// Put remembers that a page ended at key with the row (created, id).
func (c *Cursors) Put(key string, created time.Time, id string, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCursors {
		for k, e := range c.m {
			if now.Sub(e.at) > TTL {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCursors {
			clear(c.m)
		}
	}
	c.m[key] = Cursor{Created: created, ID: id, at: now}
}
