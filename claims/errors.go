package claims

import (
	"errors"
	"fmt"
)

// ErrNoGroups means the IdP said nothing usable about the user's groups. A
// SAML login is refused with it (ARCHITECTURE.md §1.2, §7). Errors returned
// by this package wrap it; test with errors.Is.
var ErrNoGroups = errors.New("the identity provider sent no group information")

// ErrGroupOverage means the IdP (Entra ID) had too many groups to put in the
// assertion or token and sent a link to the Graph API instead. It wraps
// ErrNoGroups, so a caller that only knows ErrNoGroups refuses it too.
var ErrGroupOverage = fmt.Errorf("group overage: the identity provider sent a link to the groups instead of the groups: %w", ErrNoGroups)
