package propagation

import (
	"context"
	"fmt"
	"os"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store/postgres"
	"github.com/groupgate/groupgate/sync"
)

// phases records, for one removal, when each store read and session-layer
// call of the push started and how long it took, and when the last
// snapshot write returned: from that moment every session holds the change
// and every replica has been told, so what the reader needs beyond it is
// the time its own polling round takes. GROUPGATE_BENCH_PHASES=1 prints
// the timeline (bench/profiles/propagation-*.phases.txt).
type phases struct {
	print     bool
	mu        stdsync.Mutex
	start     time.Time
	lines     []string
	lastWrite atomic.Int64 // since start, ns
}

func newPhases() *phases { return &phases{print: os.Getenv("GROUPGATE_BENCH_PHASES") == "1"} }

// begin starts recording a removal made at start.
func (p *phases) begin(start time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start, p.lines = start, nil
	p.lastWrite.Store(0)
}

// end stops recording and returns the timeline.
func (p *phases) end() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start = time.Time{}
	return p.lines
}

// add records a call named what that began at began and ends now.
func (p *phases) add(what string, began time.Time, n int) {
	if !p.print {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.start.IsZero() {
		return
	}
	p.lines = append(p.lines, fmt.Sprintf("%8.1f ms  +%7.1f ms  %-28s %6d", ms(began.Sub(p.start)), ms(time.Since(began)), what, n))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// phaseStore is the store with the reads of a push timed.
type phaseStore struct {
	*postgres.Store
	p *phases
}

func (s phaseStore) ListGroupMembers(ctx context.Context, group string) ([]string, error) {
	defer s.p.add("ListGroupMembers", time.Now(), 1)
	return s.Store.ListGroupMembers(ctx, group)
}

func (s phaseStore) GetGroupSets(ctx context.Context, ids []string) (map[string]groupgate.GroupSet, error) {
	defer s.p.add("GetGroupSets", time.Now(), len(ids))
	return s.Store.GetGroupSets(ctx, ids)
}

func (s phaseStore) ListOrgMembersOfUsers(ctx context.Context, ids []string) ([]groupgate.OrgMember, error) {
	defer s.p.add("ListOrgMembersOfUsers", time.Now(), len(ids))
	return s.Store.ListOrgMembersOfUsers(ctx, ids)
}

func (s phaseStore) ListRepoContributorsOfUsers(ctx context.Context, ids []string) ([]groupgate.RepoContributor, error) {
	defer s.p.add("ListRepoContributorsOfUsers", time.Now(), len(ids))
	return s.Store.ListRepoContributorsOfUsers(ctx, ids)
}

func (s phaseStore) MappingsForGroups(ctx context.Context, groups []string) ([]groupgate.OrgMapping, []groupgate.RepoMapping, error) {
	defer s.p.add("MappingsForGroups", time.Now(), len(groups))
	return s.Store.MappingsForGroups(ctx, groups)
}

func (s phaseStore) AckOutbox(ctx context.Context, id int64) error {
	defer s.p.add("AckOutbox", time.Now(), 1)
	return s.Store.AckOutbox(ctx, id)
}

// phaseSessions is the writing replica's session layer with its calls
// timed and its last batch write remembered.
type phaseSessions struct {
	*session.Cache
	p *phases
}

func (s phaseSessions) NextGenerations(ctx context.Context, ids []string) (map[string]int64, error) {
	defer s.p.add("NextGenerations", time.Now(), len(ids))
	return s.Cache.NextGenerations(ctx, ids)
}

func (s phaseSessions) SetMembershipsIfBatch(ctx context.Context, writes []sync.SnapshotWrite) ([]sync.SnapshotResult, error) {
	began := time.Now()
	out, err := s.Cache.SetMembershipsIfBatch(ctx, writes)
	s.p.add("SetMembershipsIfBatch", began, len(writes))
	s.p.mu.Lock()
	if !s.p.start.IsZero() {
		at := int64(time.Since(s.p.start))
		for cur := s.p.lastWrite.Load(); at > cur && !s.p.lastWrite.CompareAndSwap(cur, at); cur = s.p.lastWrite.Load() {
		}
	}
	s.p.mu.Unlock()
	return out, err
}
