package sync

import (
	"context"
	"fmt"
	"slices"
	stdsync "sync"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Bounds of one resolution round trip.
const (
	// resolveChunk is how many users are resolved together when a change
	// touches many: their groups' mappings are read once per chunk.
	resolveChunk = 500
	// groupsPerQuery bounds one MappingsForGroups call.
	groupsPerQuery = 2000
	// readWorkers bounds the concurrent per-user reads of a large change.
	readWorkers = 8
	// maxCachedNames bounds the name cache; it is emptied when full.
	maxCachedNames = 200_000
)

type repoName struct {
	orgID, orgName, name string
}

// nameSet resolves organization and repository IDs for one resolution.
type nameSet struct {
	orgs  map[string]string
	repos map[string]repoName
}

// nameCache remembers the names of organizations and repositories by ID
// across resolutions. This is safe because the store cannot rename either:
// an ID keeps its name until it is deleted, and a deleted resource's
// mappings and roles go with it, so a stale entry is never looked up again.
// If renaming is ever added, it must invalidate this cache.
type nameCache struct {
	mu    stdsync.RWMutex
	orgs  map[string]string
	repos map[string]repoName
}

func newNameCache() *nameCache {
	return &nameCache{orgs: map[string]string{}, repos: map[string]repoName{}}
}

// load returns the names of orgIDs and repoIDs. Resources that no longer
// exist are left out: a concurrent delete wins.
func (c *nameCache) load(ctx context.Context, st store.Store, orgIDs, repoIDs map[string]struct{}) (*nameSet, error) {
	ns := &nameSet{orgs: make(map[string]string, len(orgIDs)), repos: make(map[string]repoName, len(repoIDs))}
	var missingOrgs, missingRepos []string
	c.mu.RLock()
	for id := range orgIDs {
		if n, ok := c.orgs[id]; ok {
			ns.orgs[id] = n
		} else {
			missingOrgs = append(missingOrgs, id)
		}
	}
	for id := range repoIDs {
		if n, ok := c.repos[id]; ok {
			ns.repos[id] = n
		} else {
			missingRepos = append(missingRepos, id)
		}
	}
	c.mu.RUnlock()
	if len(missingOrgs) == 0 && len(missingRepos) == 0 {
		return ns, nil
	}

	fetchedOrgs := map[string]string{}
	fetchedRepos := map[string]repoName{}
	for _, id := range missingRepos {
		r, err := st.GetRepository(ctx, id)
		if groupgate.IsCode(err, groupgate.NotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load repository %s: %w", id, err)
		}
		n := repoName{orgID: r.OrganizationID, orgName: r.OrganizationName, name: r.Name}
		ns.repos[id] = n
		fetchedRepos[id] = n
		// A repository carries its organization's name: save a lookup.
		fetchedOrgs[r.OrganizationID] = r.OrganizationName
	}
	for _, id := range missingOrgs {
		if n, ok := fetchedOrgs[id]; ok {
			ns.orgs[id] = n
			continue
		}
		o, err := st.GetOrganization(ctx, id)
		if groupgate.IsCode(err, groupgate.NotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load organization %s: %w", id, err)
		}
		ns.orgs[id] = o.Name
		fetchedOrgs[id] = o.Name
	}

	c.mu.Lock()
	if len(c.orgs)+len(c.repos)+len(fetchedOrgs)+len(fetchedRepos) > maxCachedNames {
		c.orgs, c.repos = map[string]string{}, map[string]repoName{}
	}
	for id, n := range fetchedOrgs {
		c.orgs[id] = n
	}
	for id, n := range fetchedRepos {
		c.repos[id] = n
	}
	c.mu.Unlock()
	return ns, nil
}

// visibleGroups applies the group filter to a stored set: a group the
// filter excludes grants nothing, even if it entered the set before the
// filter was configured.
func (s *Syncer) visibleGroups(set groupgate.GroupSet) []string {
	names := set.Names()
	if s.filter == nil {
		return names
	}
	return slices.DeleteFunc(names, func(g string) bool { return !s.filter(g) })
}

// loadGrants reads what resolution needs for one user. NotFound when the
// user does not exist.
func (s *Syncer) loadGrants(ctx context.Context, st store.Store, userID string) (grants, error) {
	set, err := st.GetGroupSet(ctx, userID)
	if err != nil {
		return grants{}, fmt.Errorf("load group set of %s: %w", userID, err)
	}
	g := grants{userID: userID, groups: s.visibleGroups(set)}
	if len(g.groups) > 0 {
		if g.orgMappings, g.repoMappings, err = st.MappingsForGroups(ctx, g.groups); err != nil {
			return grants{}, fmt.Errorf("load mappings of %d groups: %w", len(g.groups), err)
		}
	}
	if err := s.loadManual(ctx, st, &g); err != nil {
		return grants{}, err
	}
	return g, nil
}

func (s *Syncer) loadManual(ctx context.Context, st store.Store, g *grants) error {
	var err error
	if g.orgMembers, err = st.ListUserOrgMembers(ctx, g.userID); err != nil {
		return fmt.Errorf("load organization roles of %s: %w", g.userID, err)
	}
	if g.repoContribs, err = st.ListUserRepoContributors(ctx, g.userID); err != nil {
		return fmt.Errorf("load repository roles of %s: %w", g.userID, err)
	}
	return nil
}

// loadGrantsMany reads the grants of many users, reading the mappings of
// their groups once for all. Users that do not exist are left out. The
// per-user reads run on a few goroutines: against PostgreSQL each is a
// network round trip, and thousands of them in a row would take seconds.
func (s *Syncer) loadGrantsMany(ctx context.Context, st store.Store, userIDs []string) ([]grants, error) {
	loaded := make([]grants, len(userIDs))
	found := make([]bool, len(userIDs))
	var (
		wg       stdsync.WaitGroup
		errOnce  stdsync.Once
		firstErr error
		next     = make(chan int)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(readWorkers, len(userIDs)) {
		wg.Go(func() {
			for i := range next {
				g, ok, err := s.loadOne(ctx, st, userIDs[i])
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					continue
				}
				loaded[i], found[i] = g, ok
			}
		})
	}
feed:
	for i := range userIDs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	out := make([]grants, 0, len(userIDs))
	union := map[string]struct{}{}
	for i, g := range loaded {
		if !found[i] {
			continue
		}
		for _, name := range g.groups {
			union[name] = struct{}{}
		}
		out = append(out, g)
	}

	all := make([]string, 0, len(union))
	for name := range union {
		all = append(all, name)
	}
	slices.Sort(all)
	orgBy := map[string][]groupgate.OrgMapping{}
	repoBy := map[string][]groupgate.RepoMapping{}
	for part := range slices.Chunk(all, groupsPerQuery) {
		oms, rms, err := st.MappingsForGroups(ctx, part)
		if err != nil {
			return nil, fmt.Errorf("load mappings of %d groups: %w", len(part), err)
		}
		for _, m := range oms {
			orgBy[m.Group] = append(orgBy[m.Group], m)
		}
		for _, m := range rms {
			repoBy[m.Group] = append(repoBy[m.Group], m)
		}
	}
	for i := range out {
		for _, name := range out[i].groups {
			out[i].orgMappings = append(out[i].orgMappings, orgBy[name]...)
			out[i].repoMappings = append(out[i].repoMappings, repoBy[name]...)
		}
	}
	return out, nil
}

// loadOne reads a user's group set and manual roles; ok is false when the
// user does not exist.
func (s *Syncer) loadOne(ctx context.Context, st store.Store, userID string) (g grants, ok bool, err error) {
	set, err := st.GetGroupSet(ctx, userID)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return grants{}, false, nil
	}
	if err != nil {
		return grants{}, false, fmt.Errorf("load group set of %s: %w", userID, err)
	}
	g = grants{userID: userID, groups: s.visibleGroups(set)}
	if err := s.loadManual(ctx, st, &g); err != nil {
		return grants{}, false, err
	}
	return g, true, nil
}

func (s *Syncer) namesFor(ctx context.Context, st store.Store, gs ...grants) (*nameSet, error) {
	orgs, repos := map[string]struct{}{}, map[string]struct{}{}
	for _, g := range gs {
		g.resourceIDs(orgs, repos)
	}
	return s.names.load(ctx, st, orgs, repos)
}

// resolve computes one user's Access from st.
func (s *Syncer) resolve(ctx context.Context, st store.Store, userID string) (Access, error) {
	g, err := s.loadGrants(ctx, st, userID)
	if err != nil {
		return Access{}, err
	}
	ns, err := s.namesFor(ctx, st, g)
	if err != nil {
		return Access{}, err
	}
	return g.build(ns), nil
}

// Resolve returns the user's effective roles with every source. NotFound
// when the user does not exist.
func (s *Syncer) Resolve(ctx context.Context, userID string) (Access, error) {
	return s.resolve(ctx, s.st, userID)
}
