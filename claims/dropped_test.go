package claims

import (
	"fmt"
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
)

// The group filter's victims are reported, so that a person whose groups
// grant nothing can see why (issue 13: the example filter silently dropped
// every demo group).
func TestLoginsReportTheGroupsTheFilterDropped(t *testing.T) {
	f, err := NewFilter([]string{"^eng-"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	many := make([]any, 0, 30)
	manyStr := make([]string, 0, 30)
	for i := range 30 {
		many = append(many, fmt.Sprintf("ops-%02d", i))
		manyStr = append(manyStr, fmt.Sprintf("ops-%02d", i))
	}
	tests := []struct {
		name        string
		login       func() (groupgate.Identity, error)
		kept        []string
		dropped     []string
		droppedSeen int
	}{
		{
			name: "an OIDC login names the dropped groups beside the kept ones",
			login: func() (groupgate.Identity, error) {
				return FromOIDC("okta", map[string]any{"sub": "s", "groups": []any{"eng-api", "ops", "admins"}}, OIDCOptions{Filter: f})
			},
			kept: []string{"eng-api"}, dropped: []string{"admins", "ops"}, droppedSeen: 2,
		},
		{
			name: "a SAML login names the dropped groups beside the kept ones",
			login: func() (groupgate.Identity, error) {
				return FromSAML("entra", "n", map[string][]string{DefaultGroupsAttribute: {"ops", "eng-web"}}, SAMLOptions{Filter: f})
			},
			kept: []string{"eng-web"}, dropped: []string{"ops"}, droppedSeen: 1,
		},
		{
			name: "without a filter nothing is dropped",
			login: func() (groupgate.Identity, error) {
				return FromOIDC("okta", map[string]any{"sub": "s", "groups": []any{"ops"}}, OIDCOptions{})
			},
			kept: []string{"ops"},
		},
		{
			name: "the list of dropped groups is bounded, the count is not",
			login: func() (groupgate.Identity, error) {
				return FromOIDC("okta", map[string]any{"sub": "s", "groups": many}, OIDCOptions{Filter: f})
			},
			kept: []string{}, dropped: manyStr[:groupgate.MaxDroppedGroups], droppedSeen: 30,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.login()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(id.Groups, tt.kept) || !slices.Equal(id.DroppedGroups, tt.dropped) || id.DroppedGroupCount != tt.droppedSeen {
				t.Fatalf("groups %q, dropped %q (%d); want %q, %q (%d)", id.Groups, id.DroppedGroups, id.DroppedGroupCount, tt.kept, tt.dropped, tt.droppedSeen)
			}
		})
	}
}
