package session

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
)

func codecRecords() map[string]*Record {
	t0 := time.Date(2026, 12, 4, 17, 0, 0, 123456789, time.UTC)
	return map[string]*Record{
		"a full record": {ID: "tag.random", UserID: "u1", Provider: "okta",
			Identity: groupgate.Identity{Provider: "okta", Subject: "sub", Username: "alice", Email: "alice@example.com", EmailVerified: true,
				DisplayName: "Alice Ä", Groups: []string{"eng", "ops"}, GroupsPresent: true},
			IDToken:     "eyJ.payload.sig",
			Memberships: groupgate.Memberships{Groups: []string{"eng", "ops"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin, "beta": groupgate.OrgRoleMember}, RepoRoles: map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleWrite}},
			CreatedAt:   t0, ExpiresAt: t0.Add(12 * time.Hour)},
		"no groups at all (nil)":     {ID: "x.y", UserID: "u", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		"an empty group list":        {ID: "x.y", UserID: "u", Memberships: groupgate.Memberships{Groups: []string{}}, Identity: groupgate.Identity{Groups: []string{}}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		"zero times":                 {ID: "x.y"},
		"strings with any bytes":     {ID: "x.y", UserID: "\x00\xff{", Memberships: groupgate.Memberships{Groups: []string{"", strings.Repeat("g", 300)}}, CreatedAt: t0, ExpiresAt: t0},
		"times before 1970 and late": {ID: "x.y", CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), ExpiresAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	}
}

func TestARecordReadsBackAsItWasWritten(t *testing.T) {
	for name, rec := range codecRecords() {
		t.Run(name, func(t *testing.T) {
			b, err := encodeRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != recordV1 {
				t.Fatalf("first byte %#x, want the version %#x", b[0], recordV1)
			}
			got, err := decodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, rec) {
				t.Errorf("read back\n%+v\nwant\n%+v", got, rec)
			}
		})
	}
}

// fill sets every field of v, recursively, to a value other than its zero.
func fill(t *testing.T, v reflect.Value, name string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x-" + name)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(t, s.Index(i), name+strconv.Itoa(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k, name+"-key")
		fill(t, e, name+"-value")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(t, v.Field(i), v.Type().Field(i).Name)
		}
	default:
		t.Fatalf("field %s has kind %s, which the codec test does not know: encode it, then teach fill", name, v.Kind())
	}
}

// A field added to Record, Identity or Memberships and forgotten by the
// codec would be silently dropped from every session in Redis.
func TestEveryFieldOfARecordIsEncoded(t *testing.T) {
	var rec Record
	fill(t, reflect.ValueOf(&rec).Elem(), "record")
	b, err := encodeRecord(&rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, &rec) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, &rec)
	}
}

func TestEmptyRoleMapsReadBackAsNil(t *testing.T) {
	rec := &Record{ID: "x.y", Memberships: groupgate.Memberships{OrgRoles: map[string]groupgate.OrgRole{}, RepoRoles: map[string]groupgate.RepoRole{}}}
	b, _ := encodeRecord(rec)
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Memberships.OrgRoles != nil || got.Memberships.RepoRoles != nil {
		t.Errorf("empty maps read back as %v, %v; want nil as JSON gave", got.Memberships.OrgRoles, got.Memberships.RepoRoles)
	}
}

// A record written by a version before the binary layout is JSON; it is
// read as it was written (a rolling upgrade, and until old records expire).
func TestARecordWrittenAsJSONByAnEarlierVersionIsRead(t *testing.T) {
	for name, rec := range codecRecords() {
		t.Run(name, func(t *testing.T) {
			old, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeRecord(old)
			if err != nil {
				t.Fatal(err)
			}
			var want Record
			if err := json.Unmarshal(old, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("read back\n%+v\nwant\n%+v", got, &want)
			}
		})
	}
}

func TestACorruptRecordIsAnErrorNeverAPanic(t *testing.T) {
	good, _ := encodeRecord(codecRecords()["a full record"])
	cases := map[string][]byte{
		"empty":                 {},
		"an unknown version":    append([]byte{0x02}, good[1:]...),
		"truncated":             good[:len(good)-1],
		"a trailing byte":       append(append([]byte{}, good...), 0),
		"a length past the end": {recordV1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"a huge list count":     {recordV1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"an overlong varint":    {recordV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"broken JSON":           []byte(`{"id":`),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if rec, err := decodeRecord(b); err == nil || !groupgate.IsCode(err, groupgate.Internal) {
				t.Errorf("decode = %+v, %v; want an Internal error", rec, err)
			}
		})
	}
}

// A rolling upgrade: sessions an earlier version stored as JSON are read,
// listed and rewritten by a membership push (whose compare-and-set
// compares the JSON bytes it read), and come back in the new layout.
func TestRedisReadsAndRewritesRecordsAnEarlierVersionWroteAsJSON(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	r, err := NewRedis(client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewID("alice")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rec := &Record{ID: id, UserID: "alice", Provider: "okta", Memberships: groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember}},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := r.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	key, _ := r.keyOf(id)
	old, _ := json.Marshal(rec)
	if err := client.Set(ctx, key, old, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}

	got, err := r.Load(ctx, id)
	if err != nil || got.Memberships.OrgRoles["acme"] != groupgate.OrgRoleMember {
		t.Fatalf("Load of a JSON record = %+v, %v", got, err)
	}
	gens, err := r.NextGenerations(ctx, []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	applied, n, err := r.SetMembershipsIf(ctx, "alice", gens["alice"], groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}})
	if err != nil || !applied || n != 1 {
		t.Fatalf("SetMembershipsIf over a JSON record = %v, %d, %v; want applied to 1", applied, n, err)
	}
	raw, err := client.Get(ctx, key).Bytes()
	if err != nil || raw[0] != recordV1 {
		t.Fatalf("rewritten record starts %q, %v; want the binary layout", raw[:1], err)
	}
	got, err = r.Load(ctx, id)
	if err != nil || got.Memberships.OrgRoles["acme"] != groupgate.OrgRoleAdmin || !got.ExpiresAt.Equal(rec.ExpiresAt) {
		t.Fatalf("Load after the push = %+v, %v", got, err)
	}
}

// The first step of a rolling upgrade from a version that wrote JSON:
// with WithJSONRecords every record is written as JSON, which both
// versions read.
func TestRedisWithJSONRecordsWritesWhatEarlierVersionsRead(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	r, err := NewRedis(client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	r.WithJSONRecords()
	id, _ := NewID("bob")
	now := time.Now().UTC()
	rec := &Record{ID: id, UserID: "bob", Memberships: groupgate.Memberships{Groups: []string{"eng"}}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := r.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	gens, _ := r.NextGenerations(ctx, []string{"bob"})
	if ok, n, err := r.SetMembershipsIf(ctx, "bob", gens["bob"], groupgate.Memberships{Groups: []string{"ops"}}); err != nil || !ok || n != 1 {
		t.Fatalf("SetMembershipsIf = %v, %d, %v", ok, n, err)
	}
	key, _ := r.keyOf(id)
	raw, err := client.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var old Record // what an earlier version does with it
	if err := json.Unmarshal(raw, &old); err != nil || old.ID != id || len(old.Memberships.Groups) != 1 || old.Memberships.Groups[0] != "ops" {
		t.Fatalf("stored record %q reads as %+v, %v with encoding/json", raw, old, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, rec := range codecRecords() {
		b, _ := encodeRecord(rec)
		f.Add(b)
		j, _ := json.Marshal(rec)
		f.Add(j)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			return
		}
		// Whatever decodes, encodes and decodes to the same record.
		again, err := encodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if len(b) > 0 && b[0] == recordV1 && !reflect.DeepEqual(back, rec) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, back)
		}
	})
}

// BenchmarkDecodeRecord compares the binary layout with the JSON one it
// replaced, for a session of a user in 2 and in 1,000 groups.
//
//	go test -run '^$' -bench BenchmarkDecodeRecord -benchmem ./session/
func BenchmarkDecodeRecord(b *testing.B) {
	for _, n := range []int{2, 1000} {
		rec := codecRecords()["a full record"]
		rec.Memberships.Groups = nil
		for i := range n {
			rec.Memberships.Groups = append(rec.Memberships.Groups, "group-"+strings.Repeat("x", 10)+string(rune('a'+i%26)))
		}
		bin, _ := encodeRecord(rec)
		js, _ := json.Marshal(rec)
		for _, c := range []struct {
			name string
			data string
		}{{"binary", string(bin)}, {"json", string(js)}} {
			b.Run(c.name+"/groups-"+strconv.Itoa(n), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.data)))
				for b.Loop() {
					if _, err := decodeRecordString(c.data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
