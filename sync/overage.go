package sync

import (
	"context"
	"errors"
	"fmt"

	"github.com/groupgate/groupgate"
)

// HoldsSCIMGroups reports whether SCIM provides the groups of the user the
// identity names: the user exists (matched as Login matches: by subject,
// else by verified email only), is active,
// and has at least one membership pushed over SCIM. An Entra login whose
// assertion overflowed its groups (the groups.link overage signal) may then
// proceed, its roles coming from the SCIM memberships that Login keeps;
// otherwise it is refused like a login without groups.
func (s *Syncer) HoldsSCIMGroups(ctx context.Context, ident groupgate.Identity) (bool, error) {
	u, _, err := s.findLoginUser(ctx, s.st, ident)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return false, nil
	}
	if errors.Is(err, ErrLinkRefused) {
		// No account this identity may join: SCIM holds nobody's groups
		// for it (the caller would turn an error into "try again").
		s.log.InfoContext(ctx, "group overage: the identity matches no account it may join", "provider", ident.Provider, "err", err)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !u.Active {
		return false, nil
	}
	set, err := s.st.GetGroupSet(ctx, u.ID)
	if err != nil {
		return false, fmt.Errorf("read group set of %s: %w", u.ID, err)
	}
	for _, m := range set {
		if m.Source == groupgate.SourceSCIM && (s.filter == nil || s.filter(m.Group)) {
			return true, nil
		}
	}
	return false, nil
}
