package graph_test

import (
	"testing"

	"github.com/groupgate/groupgate/broker/graph"
)

// FuzzParsePage: any body either parses into IDs that are non-empty,
// bounded and free of control characters, or is an error; never a panic.
func FuzzParsePage(f *testing.F) {
	for _, s := range []string{
		`{"value":["a","b"]}`,
		`{"@odata.context":"x","value":[{"@odata.type":"#microsoft.graph.group","id":"g"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/me/transitiveMemberOf?$skiptoken=1"}`,
		`{"value":[{"@odata.type":"#microsoft.graph.directoryRole","id":"r"}]}`,
		`{"value":[1]}`, `{"value":null}`, `[]`, `{"value":[" "]}`, `{"value":["a\u0000"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := graph.ParsePage(body)
		if err != nil {
			return
		}
		for _, id := range p.IDs {
			if id == "" || len(id) > 128 {
				t.Fatalf("id %q passed", id)
			}
			for _, r := range id {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("id %q holds a control character", id)
				}
			}
		}
	})
}
