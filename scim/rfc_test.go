package scim

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// These tests pin the RFC 7643/7644 rules that third-party conformance
// suites (scim2/test-suite, Microsoft's SCIMReferenceCode collection,
// scim2-tester) check, each on SQLite and PostgreSQL.

// onBothStores runs fn against a SCIM server on SQLite and on PostgreSQL.
func onBothStores(t *testing.T, fn func(t *testing.T, e *env), opts ...Option) {
	t.Helper()
	for _, backend := range []struct {
		name string
		open func(testing.TB) storeT
	}{{"SQLite", openSQLite}, {"PostgreSQL", openPostgres}} {
		t.Run("on "+backend.name, func(t *testing.T) {
			fn(t, newEnvOn(t, backend.open(t), opts...))
		})
	}
}

func metaOf(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	m, ok := obj["meta"].(map[string]any)
	if !ok {
		t.Fatalf("no meta in %v", obj)
	}
	return m
}

// RFC 7643 §2.5, §3.1: an unassigned attribute is omitted, not returned as
// "".
func TestUnassignedExternalIdIsOmitted(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		u := e.must(201, "POST", "/scim/v2/Users", `{"userName":"noext"}`)
		g := e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"noext"}`)
		for _, obj := range []map[string]any{
			u, g,
			e.must(200, "GET", "/scim/v2/Users/"+u["id"].(string), ""),
			e.must(200, "GET", "/scim/v2/Groups/"+g["id"].(string), ""),
			e.must(200, "GET", "/scim/v2/Users?filter=userName+eq+%22noext%22", "")["Resources"].([]any)[0].(map[string]any),
			e.must(200, "GET", "/scim/v2/Groups?filter=displayName+eq+%22noext%22", "")["Resources"].([]any)[0].(map[string]any),
		} {
			if v, ok := obj["externalId"]; ok {
				t.Errorf("%s %v: externalId %q returned, want it omitted", metaOf(t, obj)["resourceType"], obj["id"], v)
			}
		}
		t.Run("an externalId set to empty is omitted too", func(t *testing.T) {
			id := e.must(201, "POST", "/scim/v2/Users", `{"userName":"emptyext","externalId":""}`)["id"].(string)
			if _, ok := e.must(200, "GET", "/scim/v2/Users/"+id, "")["externalId"]; ok {
				t.Fatal("externalId returned")
			}
		})
	})
}

// RFC 7644 §3.5.2.1: a PATCH that changes nothing SHALL NOT change
// meta.version or meta.lastModified; the same holds for a PUT that sends
// the resource as it is.
func TestUpdateThatChangesNothingKeepsVersionAndLastModified(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		uid := e.must(201, "POST", "/scim/v2/Users", `{"userName":"still","title":"Eng","emails":[{"value":"still@example.com","type":"work","primary":true}]}`)["id"].(string)
		gid := e.must(201, "POST", "/scim/v2/Groups", fmt.Sprintf(`{"displayName":"still","members":[{"value":%q}]}`, uid))["id"].(string)
		cases := []struct {
			name, method, path, body string
		}{
			{"a replace with the current value", "PATCH", "/scim/v2/Users/" + uid, `{"Operations":[{"op":"replace","path":"title","value":"Eng"}]}`},
			{"a path-less replace with current values", "PATCH", "/scim/v2/Users/" + uid, `{"Operations":[{"op":"replace","value":{"title":"Eng","active":true}}]}`},
			{"an add of an email already there", "PATCH", "/scim/v2/Users/" + uid, `{"Operations":[{"op":"add","path":"emails","value":[{"value":"still@example.com","type":"work","primary":true}]}]}`},
			{"a remove of an absent attribute", "PATCH", "/scim/v2/Users/" + uid, `{"Operations":[{"op":"remove","path":"nickName"}]}`},
			{"a PUT of the same document", "PUT", "/scim/v2/Users/" + uid, `{"userName":"still","title":"Eng","emails":[{"value":"still@example.com","type":"work","primary":true}]}`},
			{"an add of a member already in the group", "PATCH", "/scim/v2/Groups/" + gid, fmt.Sprintf(`{"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, uid)},
			{"a remove of a member not in the group", "PATCH", "/scim/v2/Groups/" + gid, `{"Operations":[{"op":"remove","path":"members[value eq \"nobody\"]"}]}`},
			{"a replace of the group's name with itself", "PATCH", "/scim/v2/Groups/" + gid, `{"Operations":[{"op":"replace","path":"displayName","value":"still"}]}`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := strings.TrimPrefix(tc.path, "/scim/v2")
				before := metaOf(t, e.must(200, "GET", "/scim/v2"+res, ""))
				_, _, h := e.do("GET", "/scim/v2"+res, "")
				got := metaOf(t, e.must(200, tc.method, tc.path, tc.body))
				after := metaOf(t, e.must(200, "GET", "/scim/v2"+res, ""))
				for _, m := range []map[string]any{got, after} {
					if m["version"] != before["version"] || m["lastModified"] != before["lastModified"] {
						t.Fatalf("meta moved from %v/%v to %v/%v", before["version"], before["lastModified"], m["version"], m["lastModified"])
					}
				}
				if _, _, h2 := e.do("GET", "/scim/v2"+res, ""); h2.Get("ETag") != h.Get("ETag") {
					t.Fatalf("ETag moved from %s to %s", h.Get("ETag"), h2.Get("ETag"))
				}
			})
		}
		t.Run("a PATCH that changes something still moves the version", func(t *testing.T) {
			before := metaOf(t, e.must(200, "GET", "/scim/v2/Users/"+uid, ""))
			after := metaOf(t, e.must(200, "PATCH", "/scim/v2/Users/"+uid, `{"Operations":[{"op":"replace","path":"title","value":"Boss"}]}`))
			if after["version"] == before["version"] {
				t.Fatalf("version stayed %v", after["version"])
			}
		})
	})
}

// RFC 7643 §2.4: at most one primary value and no repeated value; POST,
// PUT and PATCH all normalise alike.
func TestMultiValuedAttributesAreNormalisedAlikeByPostPutAndPatch(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		emails := `[{"value":"a@example.com","type":"work","primary":true},{"value":"b@example.com","type":"home","primary":true},{"value":"A@example.com","type":"work"}]`
		check := func(t *testing.T, obj map[string]any) {
			t.Helper()
			list, _ := obj["emails"].([]any)
			primaries, seen := 0, map[string]bool{}
			for _, e := range list {
				em := e.(map[string]any)
				if em["primary"] == true {
					primaries++
				}
				k := strings.ToLower(fmt.Sprint(em["type"], "|", em["value"]))
				if seen[k] {
					t.Errorf("(type, value) %s repeated in %v", k, list)
				}
				seen[k] = true
			}
			if primaries != 1 || len(list) != 2 {
				t.Fatalf("emails %v: want 2 values with exactly one primary", list)
			}
		}
		var id string
		t.Run("POST", func(t *testing.T) {
			obj := e.must(201, "POST", "/scim/v2/Users", `{"userName":"multi","emails":`+emails+`}`)
			id = obj["id"].(string)
			check(t, obj)
			check(t, e.must(200, "GET", "/scim/v2/Users/"+id, ""))
		})
		t.Run("PUT", func(t *testing.T) {
			check(t, e.must(200, "PUT", "/scim/v2/Users/"+id, `{"userName":"multi","emails":`+emails+`}`))
			check(t, e.must(200, "GET", "/scim/v2/Users/"+id, ""))
		})
		t.Run("PATCH replace", func(t *testing.T) {
			check(t, e.must(200, "PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"replace","path":"emails","value":`+emails+`}]}`))
		})
		t.Run("PATCH add", func(t *testing.T) {
			e.must(200, "PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"remove","path":"emails"}]}`)
			check(t, e.must(200, "PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"add","path":"emails","value":`+emails+`}]}`))
		})
		t.Run("the same primary wins in all three", func(t *testing.T) {
			a := e.must(200, "PUT", "/scim/v2/Users/"+id, `{"userName":"multi","emails":`+emails+`}`)
			e.must(200, "PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"remove","path":"emails"}]}`)
			b := e.must(200, "PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"add","path":"emails","value":`+emails+`}]}`)
			if primaryValue(a) != primaryValue(b) {
				t.Fatalf("PUT made %q primary, PATCH %q", primaryValue(a), primaryValue(b))
			}
		})
	})
}

func primaryValue(obj map[string]any) string {
	list, _ := obj["emails"].([]any)
	for _, e := range list {
		if em := e.(map[string]any); em["primary"] == true {
			return fmt.Sprint(em["value"])
		}
	}
	return ""
}

// RFC 7643 §3.1: a resource not modified since its creation has
// lastModified equal to created; it is at its first version.
func TestNewResourceHasLastModifiedEqualToCreatedAndFirstVersion(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		uid := e.must(201, "POST", "/scim/v2/Users", `{"userName":"fresh"}`)["id"].(string)
		cases := []struct{ name, path, body string }{
			{"a user", "/scim/v2/Users", `{"userName":"fresh2"}`},
			{"a group without members", "/scim/v2/Groups", `{"displayName":"fresh-empty"}`},
			{"a group with members", "/scim/v2/Groups", fmt.Sprintf(`{"displayName":"fresh-full","members":[{"value":%q}]}`, uid)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				obj, h := postWithHeaders(t, e, tc.path, tc.body)
				got := e.must(200, "GET", tc.path+"/"+obj["id"].(string), "")
				for _, m := range []map[string]any{metaOf(t, obj), metaOf(t, got)} {
					if m["created"] != m["lastModified"] || m["version"] != `W/"1"` {
						t.Fatalf("created %v, lastModified %v, version %v; want lastModified = created and W/\"1\"", m["created"], m["lastModified"], m["version"])
					}
				}
				if h.Get("ETag") != `W/"1"` {
					t.Fatalf("ETag %s", h.Get("ETag"))
				}
			})
		}
	})
}

func postWithHeaders(t *testing.T, e *env, path, body string) (map[string]any, http.Header) {
	t.Helper()
	s, obj, h := e.do("POST", path, body)
	if s != 201 {
		t.Fatalf("POST %s: %d %v", path, s, obj)
	}
	return obj, h
}

// RFC 7644 §3.5.2.3: a replace whose value filter matches nothing is 400
// noTarget. The one exception, which Entra ID needs, is a filter that is
// exactly `type eq "<canonical type>"` on a multi-valued attribute with
// canonical types: it creates that value (docs/scim.md).
func TestReplaceWithAValueFilterThatMatchesNothing(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		uid := e.must(201, "POST", "/scim/v2/Users", `{"userName":"target","emails":[{"value":"home@example.com","type":"home"}]}`)["id"].(string)
		gid := e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"target"}`)["id"].(string)
		refused := []struct{ name, path, op string }{
			{"a value filter on value", "/Users/" + uid, `{"op":"replace","path":"emails[value eq \"x@example.com\"]","value":{"value":"y@example.com"}}`},
			{"a value filter on value with a sub-attribute", "/Users/" + uid, `{"op":"replace","path":"emails[value eq \"x@example.com\"].type","value":"work"}`},
			{"a type that is not canonical", "/Users/" + uid, `{"op":"replace","path":"emails[type eq \"custom\"].value","value":"c@example.com"}`},
			{"a type filter joined with another test", "/Users/" + uid, `{"op":"replace","path":"emails[type eq \"work\" and primary eq true].value","value":"c@example.com"}`},
			{"a type filter on an attribute without canonical types", "/Users/" + uid, `{"op":"replace","path":"ims[type eq \"aim\"].value","value":"c"}`},
			{"a member filter", "/Groups/" + gid, `{"op":"replace","path":"members[value eq \"` + uid + `\"]","value":{"value":"` + uid + `"}}`},
		}
		for _, tc := range refused {
			t.Run(tc.name+" is noTarget", func(t *testing.T) {
				before := e.must(200, "GET", "/scim/v2"+tc.path, "")
				s, body, _ := e.do("PATCH", "/scim/v2"+tc.path, `{"Operations":[`+tc.op+`]}`)
				if s != 400 || scimTypeOf(body) != errNoTarget {
					t.Fatalf("got %d %v, want 400 noTarget", s, body)
				}
				if after := e.must(200, "GET", "/scim/v2"+tc.path, ""); jsonString(after) != jsonString(before) {
					t.Fatalf("resource changed: %v", after)
				}
			})
		}
		t.Run(`Entra's replace of emails[type eq "work"].value creates the work email`, func(t *testing.T) {
			got := e.must(200, "PATCH", "/scim/v2/Users/"+uid, `{"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"work@example.com"}]}`)
			found := false
			for _, x := range got["emails"].([]any) {
				em := x.(map[string]any)
				found = found || (em["type"] == "work" && em["value"] == "work@example.com")
			}
			if !found {
				t.Fatalf("emails %v", got["emails"])
			}
		})
		t.Run("a type filter that matches replaces in place", func(t *testing.T) {
			got := e.must(200, "PATCH", "/scim/v2/Users/"+uid, `{"Operations":[{"op":"replace","path":"emails[type eq \"home\"].value","value":"home2@example.com"}]}`)
			if n := len(got["emails"].([]any)); n != 2 {
				t.Fatalf("emails %v", got["emails"])
			}
		})
	})
}

// active is how groupgate ends a user's access; removing it has no
// meaning, so it is refused rather than silently ignored (docs/scim.md).
func TestRemoveOfActiveIsRefused(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		id := e.must(201, "POST", "/scim/v2/Users", `{"userName":"act","active":false}`)["id"].(string)
		for _, path := range []string{"active", "ACTIVE", "urn:ietf:params:scim:schemas:core:2.0:User:active"} {
			t.Run(path, func(t *testing.T) {
				s, body, _ := e.do("PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"remove","path":"`+path+`"}]}`)
				if s != 400 || scimTypeOf(body) != errMutability {
					t.Fatalf("got %d %v, want 400 mutability", s, body)
				}
				if got := e.must(200, "GET", "/scim/v2/Users/"+id, ""); got["active"] != false {
					t.Fatalf("active is %v", got["active"])
				}
			})
		}
	})
}

// RFC 7643 §3.1: the service provider does not enforce the uniqueness of
// externalId.
func TestExternalIdIsNotUnique(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		e.must(201, "POST", "/scim/v2/Users", `{"userName":"ext1","externalId":"same"}`)
		e.must(201, "POST", "/scim/v2/Users", `{"userName":"ext2","externalId":"same"}`)
		e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"ext1","externalId":"same"}`)
		e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"ext2","externalId":"same"}`)
		gid := e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"ext3"}`)["id"].(string)
		e.must(200, "PATCH", "/scim/v2/Groups/"+gid, `{"Operations":[{"op":"add","path":"externalId","value":"same"}]}`)
		list := e.must(200, "GET", "/scim/v2/Users?filter=externalId+eq+%22same%22", "")
		if list["totalResults"] != float64(2) {
			t.Fatalf("filter by externalId found %v", list["totalResults"])
		}
	})
}

// Every 409 names the attribute that clashes, with scimType uniqueness
// (RFC 7644 §3.12).
func TestConflictNamesTheClashingAttribute(t *testing.T) {
	for _, match := range []sync.MatchKey{sync.MatchEmail, sync.MatchUserName} {
		t.Run("with match key "+string(match), func(t *testing.T) {
			onBothStores(t, func(t *testing.T, e *env) {
				uid := e.must(201, "POST", "/scim/v2/Users", `{"userName":"taken","emails":[{"value":"taken@example.com"}]}`)["id"].(string)
				other := e.must(201, "POST", "/scim/v2/Users", `{"userName":"other","emails":[{"value":"other@example.com"}]}`)["id"].(string)
				e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"taken"}`)
				gid := e.must(201, "POST", "/scim/v2/Groups", `{"displayName":"free"}`)["id"].(string)
				_ = uid
				cases := []struct{ name, method, path, body, attr string }{
					{"a POST with a taken userName", "POST", "/Users", `{"userName":"TAKEN"}`, "userName"},
					{"a PUT to a taken userName", "PUT", "/Users/" + other, `{"userName":"taken","emails":[{"value":"other@example.com"}]}`, "userName"},
					{"a PATCH to a taken userName", "PATCH", "/Users/" + other, `{"Operations":[{"op":"replace","path":"userName","value":"taken"}]}`, "userName"},
					{"a POST with a taken group displayName", "POST", "/Groups", `{"displayName":"taken"}`, "displayName"},
					{"a PATCH to a taken group displayName", "PATCH", "/Groups/" + gid, `{"Operations":[{"op":"replace","path":"displayName","value":"taken"}]}`, "displayName"},
				}
				if match == sync.MatchEmail {
					cases = append(cases, struct{ name, method, path, body, attr string }{
						"a POST whose email matches a provisioned user", "POST", "/Users", `{"userName":"new","emails":[{"value":"TAKEN@example.com"}]}`, "emails"})
				}
				// A rename onto a name that an organization maps together
				// with the old one would merge two mappings.
				e.mapOrg("acme", "free", groupgate.OrgRoleMember)
				e.mapOrg("acme", "login-only", groupgate.OrgRoleAdmin)
				cases = append(cases, struct{ name, method, path, body, attr string }{
					"a rename that would merge two mappings", "PATCH", "/Groups/" + gid,
					`{"Operations":[{"op":"replace","path":"displayName","value":"login-only"}]}`, "displayName"})
				for _, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						s, body, _ := e.do(tc.method, "/scim/v2"+tc.path, tc.body)
						detail, _ := body["detail"].(string)
						if s != 409 || scimTypeOf(body) != errUniqueness || !strings.Contains(detail, tc.attr) {
							t.Fatalf("got %d %v; want 409 uniqueness naming %s", s, body, tc.attr)
						}
					})
				}
			}, WithMatchKey(match))
		})
	}
}

// Okta and an admin account, or two Okta users, may share an email when
// users are matched by userName: the email is not a key then.
func TestUserNameMatchKeyAcceptsUsersSharingAnEmail(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		e.must(201, "POST", "/scim/v2/Users", `{"userName":"one","emails":[{"value":"shared@example.com"}]}`)
		e.must(201, "POST", "/scim/v2/Users", `{"userName":"two","emails":[{"value":"shared@example.com"}]}`)
	}, WithMatchKey(sync.MatchUserName))
}

// Entra sends attributes of custom mappings it was configured with;
// unknown attributes are ignored alike by POST, PUT and PATCH, so that an
// update does not fail where the create succeeded.
func TestUnknownAttributesAreIgnoredByPostPutAndPatch(t *testing.T) {
	const custom = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
	onBothStores(t, func(t *testing.T, e *env) {
		obj := e.must(201, "POST", "/scim/v2/Users", `{"userName":"unk","shoeSize":"44","`+custom+`":{"badge":"7"},"title":"Eng"}`)
		id := obj["id"].(string)
		e.must(200, "PUT", "/scim/v2/Users/"+id, `{"userName":"unk","shoeSize":"44","`+custom+`":{"badge":"7"},"title":"Eng"}`)
		ops := []struct{ name, op string }{
			{"an unknown core attribute by path", `{"op":"replace","path":"shoeSize","value":"45"}`},
			{"an add of an unknown attribute", `{"op":"Add","path":"shoeSize","value":"45"}`},
			{"a remove of an unknown attribute", `{"op":"remove","path":"shoeSize"}`},
			{"an unknown extension attribute by path", `{"op":"replace","path":"` + custom + `:badge","value":"8"}`},
			{"an unknown extension as a whole", `{"op":"replace","path":"` + custom + `","value":{"badge":"8"}}`},
			{"an unknown sub-attribute", `{"op":"replace","path":"name.nickname2","value":"x"}`},
			{"an unknown key in a path-less replace", `{"op":"replace","value":{"shoeSize":"45","title":"Eng"}}`},
			{"an unknown extension in a path-less replace", `{"op":"replace","value":{"` + custom + `":{"badge":"8"}}}`},
			{"schemas, id and meta inside an extension object", `{"op":"replace","value":{"` + URNEnterpriseUser + `":{"schemas":["x"],"id":"y","meta":{},"department":"R&D"}}}`},
			{"schemas, id and meta inside an extension by path", `{"op":"replace","path":"` + URNEnterpriseUser + `","value":{"schemas":["x"],"id":"y","meta":{},"department":"R&D"}}`},
		}
		for _, tc := range ops {
			t.Run(tc.name, func(t *testing.T) {
				got := e.must(200, "PATCH", "/scim/v2/Users/"+id, `{"Operations":[`+tc.op+`]}`)
				if _, ok := got["shoeSize"]; ok {
					t.Fatalf("unknown attribute stored: %v", got)
				}
				if got["title"] != "Eng" {
					t.Fatalf("title %v", got["title"])
				}
			})
		}
		if ent, _ := e.must(200, "GET", "/scim/v2/Users/"+id, "")[URNEnterpriseUser].(map[string]any); ent["department"] != "R&D" {
			t.Fatalf("enterprise extension %v", ent)
		}
		t.Run("a malformed path is still invalidPath", func(t *testing.T) {
			s, body, _ := e.do("PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"replace","path":"emails[type eq","value":"x"}]}`)
			if s != 400 || scimTypeOf(body) != errInvalidPath {
				t.Fatalf("got %d %v", s, body)
			}
		})
	})
}

// ServiceProviderConfig.documentationUri (RFC 7643 §5) points at a page
// that exists in this repository.
func TestDocumentationURIPointsAtAnExistingPage(t *testing.T) {
	e := newEnv(t)
	uri, _ := e.must(200, "GET", "/scim/v2/ServiceProviderConfig", "")["documentationUri"].(string)
	_, rel, ok := strings.Cut(uri, "/blob/main/")
	if !ok {
		t.Fatalf("documentationUri %q is not a page of the repository", uri)
	}
	b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("documentationUri %q: %v", uri, err)
	}
	for _, want := range []string{"## Authentication", "## Okta", "## Microsoft Entra ID", "## Uniqueness", "noTarget", "remove` of `active`", "## Compliance run"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not cover %q", rel, want)
		}
	}
}
