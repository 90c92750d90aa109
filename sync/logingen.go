package sync

import (
	"context"
	stdsync "sync"
	"time"
)

// A login resolves the user's access once, pushes it to the user's live
// sessions under generation g, and the caller then saves the new session
// holding that snapshot and calls SessionStarted (web's finish step). It
// used to call Refresh, which resolved again and wrote a second outbox
// entry, for a mapping change
// committed between the login's read and the save: its push, made before
// the session existed, missed it. It is enough to know that no such push
// can exist, which the generation counter tells.
//
// Why reading the counter after the save suffices, with the argument of
// pusher (push.go): the login's pusher took g after the login committed
// and read the store after that. Let C be any change that moves the user,
// and gC the generation its pusher took after C committed.
//
//   - gC < g: gC was taken before g, so C committed before the login's
//     read, and the saved snapshot includes C.
//   - gC > g: Refresh read the counter after the save and found g, so gC
//     was taken after that read, after the save; C's pusher reads the store
//     after taking gC and rewrites every session the user has when it
//     writes, the new one included (or is skipped for a later pusher, for
//     which the same holds).
//
// If the counter is anything but g (a change's pusher took a later value,
// the counter expired or was lost), SessionStarted does what Refresh does:
// outbox entry, generation, resolution, push. So one login is one
// resolution unless a change to the same user races it.
//
// The remembered generations are per process: the login and its Refresh
// run in one request on one replica. An entry not claimed within
// loginGenTTL is dropped (SessionStarted then falls back to Refresh).

const (
	loginGenTTL = time.Minute
	loginGenMax = 100_000
)

type loginGen struct {
	gen int64
	at  time.Time
}

// loginGens remembers, per user, the generation under which the last
// login's snapshot was pushed.
type loginGens struct {
	mu stdsync.Mutex
	m  map[string]loginGen
}

func newLoginGens() *loginGens { return &loginGens{m: map[string]loginGen{}} }

func (l *loginGens) put(userID string, gen int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) >= loginGenMax {
		for id, e := range l.m {
			if now.Sub(e.at) > loginGenTTL {
				delete(l.m, id)
			}
		}
		if len(l.m) >= loginGenMax {
			clear(l.m)
		}
	}
	l.m[userID] = loginGen{gen: gen, at: now}
}

// take returns and forgets the generation of userID's last login, if it
// is recent.
func (l *loginGens) take(userID string, now time.Time) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[userID]
	delete(l.m, userID)
	if !ok || now.Sub(e.at) > loginGenTTL {
		return 0, false
	}
	return e.gen, true
}

// upToDate reports whether the user's sessions need no push after a
// session saved with the snapshot of the user's last login (see above).
func (s *Syncer) upToDate(ctx context.Context, userID string) bool {
	gen, ok := s.loginGens.take(userID, s.now())
	if !ok {
		return false
	}
	cur, err := s.push.w.Generation(context.WithoutCancel(ctx), userID)
	return err == nil && cur == gen
}
