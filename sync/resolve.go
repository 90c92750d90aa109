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
	// touches many: a chunk costs five statements (group sets, two kinds
	// of manual roles, two of mappings). Larger chunks save little (10,000
	// users resolve in about 0.2 s on PostgreSQL at 500 or 2,000) and delay
	// the first push, which starts once the first chunk is resolved.
	resolveChunk = 1000
	// firstSyncChunk and maxSyncChunk size the chunks syncUsers resolves:
	// the first small, so that the first writes start early, then each
	// twice the one before, up to maxSyncChunk. A chunk costs the same
	// six round trips (its generations, then five statements) whatever its
	// size, and on a loaded machine each round trip waits for the
	// scheduler as well as the server: 10,000 users took 10 chunks of
	// resolveChunk, now 5.
	firstSyncChunk = 500
	maxSyncChunk   = 4000
	// groupsPerQuery bounds one MappingsForGroups call.
	groupsPerQuery = 2000
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
	// bases are the organizations' repository base roles (loadBases).
	bases baseRoles
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

// loadGrants reads what resolution needs for one user, in one round trip
// on PostgreSQL (GetUserGrants). NotFound when the user does not exist.
// It returns the repositories under a base role read with them.
func (s *Syncer) loadGrants(ctx context.Context, st store.Store, userID string) (grants, []store.BaseRoleRepository, error) {
	ug, err := st.GetUserGrants(ctx, userID)
	if err != nil {
		return grants{}, nil, fmt.Errorf("load grants of %s: %w", userID, err)
	}
	g := grants{userID: userID, groups: s.visibleGroups(ug.Groups), orgMembers: ug.OrgMembers, repoContribs: ug.RepoContributors,
		orgMappings: ug.OrgMappings, repoMappings: ug.RepoMappings}
	if s.filter != nil {
		// The store read the mappings of every group in the set; those of
		// groups the filter hides grant nothing.
		g.orgMappings = slices.DeleteFunc(g.orgMappings, func(m groupgate.OrgMapping) bool { return !s.filter(m.Group) })
		g.repoMappings = slices.DeleteFunc(g.repoMappings, func(m groupgate.RepoMapping) bool { return !s.filter(m.Group) })
	}
	return g, ug.BaseRoleRepositories, nil
}

// loadGrantsMany reads the grants of many users in a fixed number of
// statements, whatever their number: their group sets, their manual roles,
// then the mappings of the union of their groups. Users that do not exist
// are left out. Against PostgreSQL every statement is a network round
// trip, and three per user made a change reaching 10,000 users take
// seconds. Callers bound userIDs (resolveChunk, maxSyncChunk).
func (s *Syncer) loadGrantsMany(ctx context.Context, st store.Store, userIDs []string) ([]grants, error) {
	sets, err := st.GetGroupSets(ctx, userIDs)
	if err != nil {
		return nil, fmt.Errorf("load group sets of %d users: %w", len(userIDs), err)
	}
	members, err := st.ListOrgMembersOfUsers(ctx, userIDs)
	if err != nil {
		return nil, fmt.Errorf("load organization roles of %d users: %w", len(userIDs), err)
	}
	contribs, err := st.ListRepoContributorsOfUsers(ctx, userIDs)
	if err != nil {
		return nil, fmt.Errorf("load repository roles of %d users: %w", len(userIDs), err)
	}
	membersBy := map[string][]groupgate.OrgMember{}
	for _, m := range members {
		membersBy[m.UserID] = append(membersBy[m.UserID], m)
	}
	contribsBy := map[string][]groupgate.RepoContributor{}
	for _, c := range contribs {
		contribsBy[c.UserID] = append(contribsBy[c.UserID], c)
	}

	out := make([]grants, 0, len(sets))
	union := map[string]struct{}{}
	for _, id := range userIDs {
		set, ok := sets[id]
		if !ok {
			continue // deleted meanwhile, or never existed
		}
		g := grants{userID: id, groups: s.visibleGroups(set), orgMembers: membersBy[id], repoContribs: contribsBy[id]}
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
		// Sized first: thousands of users each growing two slices group by
		// group showed in profiles.
		var no, nr int
		for _, name := range out[i].groups {
			no, nr = no+len(orgBy[name]), nr+len(repoBy[name])
		}
		out[i].orgMappings = make([]groupgate.OrgMapping, 0, no)
		out[i].repoMappings = make([]groupgate.RepoMapping, 0, nr)
		for _, name := range out[i].groups {
			out[i].orgMappings = append(out[i].orgMappings, orgBy[name]...)
			out[i].repoMappings = append(out[i].repoMappings, repoBy[name]...)
		}
	}
	return out, nil
}

func (s *Syncer) namesFor(ctx context.Context, st store.Store, gs ...grants) (*nameSet, error) {
	return s.namesWithBases(ctx, st, st.ListBaseRoleRepositories, gs...)
}

// namesWithBases is namesFor with the base roles listed by listBases.
func (s *Syncer) namesWithBases(ctx context.Context, st store.Store, listBases func(context.Context, []string) ([]store.BaseRoleRepository, error), gs ...grants) (*nameSet, error) {
	orgs, repos := map[string]struct{}{}, map[string]struct{}{}
	for _, g := range gs {
		g.resourceIDs(orgs, repos)
	}
	ns, err := s.names.load(ctx, st, orgs, repos)
	if err != nil {
		return nil, err
	}
	if err := loadBasesFrom(ctx, listBases, ns); err != nil {
		return nil, err
	}
	return ns, nil
}

// resolve computes one user's Access from st: one round trip on
// PostgreSQL once the names are cached (GetUserGrants reads the base
// roles too).
func (s *Syncer) resolve(ctx context.Context, st store.Store, userID string) (Access, error) {
	g, bases, err := s.loadGrants(ctx, st, userID)
	if err != nil {
		return Access{}, err
	}
	ns, err := s.namesWithBases(ctx, st, prefetchedBases(bases), g)
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
