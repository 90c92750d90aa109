package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Page is one page of a Graph collection answer, reduced to what overage
// handling needs: the group IDs and where the next page is.
type Page struct {
	// IDs are the object IDs on the page. Objects that are not groups
	// (directory roles, administrative units, whose @odata.type says so)
	// are left out.
	IDs []string
	// NextLink is @odata.nextLink, the absolute URL of the next page;
	// empty on the last one.
	NextLink string
}

// rawPage is the JSON shape of a Graph collection (OData v4 JSON format
// §12): "value" holds either strings (the getMemberObjects and
// getMemberGroups actions) or directory objects (transitiveMemberOf).
type rawPage struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

type rawObject struct {
	ID   string `json:"id"`
	Type string `json:"@odata.type"`
}

// maxIDLength bounds one object ID: Entra IDs are 36-character GUIDs; a
// longer value is not one.
const maxIDLength = 128

// ParsePage parses one Graph collection response body. A body that is not
// a JSON object with a "value" array, or that holds a value that is
// neither a string nor an object with a string "id", is an error: a
// partial group list would take roles away silently.
func ParsePage(body []byte) (Page, error) {
	var raw rawPage
	if err := json.Unmarshal(body, &raw); err != nil {
		return Page{}, fmt.Errorf("graph response is not a JSON collection: %w", err)
	}
	if raw.Value == nil {
		return Page{}, errors.New("graph response has no value array")
	}
	p := Page{NextLink: raw.NextLink, IDs: make([]string, 0, len(raw.Value))}
	for i, v := range raw.Value {
		id, keep, err := parseValue(v)
		if err != nil {
			return Page{}, fmt.Errorf("graph response value %d: %w", i, err)
		}
		if keep {
			p.IDs = append(p.IDs, id)
		}
	}
	return p, nil
}

func parseValue(v json.RawMessage) (id string, keep bool, err error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return checkID(s)
	}
	var o rawObject
	if err := json.Unmarshal(v, &o); err != nil {
		return "", false, errors.New("neither an object ID nor a directory object")
	}
	// transitiveMemberOf without the /microsoft.graph.group cast lists
	// directory roles and administrative units too; only groups count.
	if o.Type != "" && o.Type != "#microsoft.graph.group" {
		return "", false, nil
	}
	return checkID(o.ID)
}

func checkID(s string) (string, bool, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxIDLength {
		return "", false, fmt.Errorf("object ID of %d bytes", len(s))
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", false, errors.New("object ID holds a control character")
		}
	}
	return s, true, nil
}
