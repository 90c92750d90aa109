package session

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/groupgate/groupgate"
)

// Session records are stored in a compact binary layout (issue 15): JSON
// cost the cache-off /auth path a reflective decode of every group on every
// request, and a membership push a decode and an encode of every live
// session of the user. Records written by earlier versions are JSON; they
// start with '{', which no binary record does, so both are read during a
// rolling upgrade and until the old records expire. Only the binary layout
// is written.
//
// Layout, version 1. A string is a uvarint byte length then the bytes; a
// list is a uvarint count then its strings, with count 0 for nil and n+1
// for n strings (JSON keeps null apart from [] as well); a map is a
// uvarint count then key and value strings, keys in ascending order; a
// time is a varint of seconds since 1970 UTC then a uvarint of
// nanoseconds, read back in UTC.
//
//	byte     recordV1 (0x01)
//	string   ID, UserID, Provider
//	string   Identity.Provider, .Subject, .Username, .Email, .DisplayName
//	byte     flags: 1 Identity.EmailVerified, 2 Identity.GroupsPresent
//	list     Identity.Groups, Identity.DroppedGroups
//	varint   Identity.DroppedGroupCount
//	string   IDToken, IDPSessionID
//	list     Memberships.Groups
//	map      Memberships.OrgRoles (empty: nil)
//	map      Memberships.RepoRoles (empty: nil)
//	time     CreatedAt, ExpiresAt
//
// Nothing may follow. The decoder checks every length against what is
// left, so a corrupt value is an error, never a panic or a huge allocation
// (FuzzDecodeRecord). A field added to Record, Identity or Memberships
// must be added here (TestEveryFieldOfARecordIsEncoded fails until it is)
// and, once records of this layout exist, under a new version byte.
const recordV1 = 0x01

const (
	flagEmailVerified = 1 << iota
	flagGroupsPresent
)

func encodeRecord(rec *Record) ([]byte, error) {
	m := rec.Memberships
	n := 1 + 3*binary.MaxVarintLen64 + 6 + len(rec.IDToken) + len(rec.IDPSessionID)
	for _, s := range [...]string{rec.ID, rec.UserID, rec.Provider, rec.Identity.Provider, rec.Identity.Subject,
		rec.Identity.Username, rec.Identity.Email, rec.Identity.DisplayName} {
		n += len(s) + 2
	}
	for _, g := range rec.Identity.Groups {
		n += len(g) + 2
	}
	for _, g := range rec.Identity.DroppedGroups {
		n += len(g) + 2
	}
	for _, g := range m.Groups {
		n += len(g) + 2
	}
	for k, v := range m.OrgRoles {
		n += len(k) + len(v) + 4
	}
	for k, v := range m.RepoRoles {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n+8*binary.MaxVarintLen64)
	b = append(b, recordV1)
	for _, s := range [...]string{rec.ID, rec.UserID, rec.Provider, rec.Identity.Provider, rec.Identity.Subject,
		rec.Identity.Username, rec.Identity.Email, rec.Identity.DisplayName} {
		b = appendString(b, s)
	}
	var flags byte
	if rec.Identity.EmailVerified {
		flags |= flagEmailVerified
	}
	if rec.Identity.GroupsPresent {
		flags |= flagGroupsPresent
	}
	b = append(b, flags)
	b = appendList(b, rec.Identity.Groups)
	b = appendList(b, rec.Identity.DroppedGroups)
	b = binary.AppendVarint(b, int64(rec.Identity.DroppedGroupCount))
	b = appendString(b, rec.IDToken)
	b = appendString(b, rec.IDPSessionID)
	b = appendList(b, m.Groups)
	b = appendMap(b, m.OrgRoles)
	b = appendMap(b, m.RepoRoles)
	b = appendTime(b, rec.CreatedAt)
	b = appendTime(b, rec.ExpiresAt)
	return b, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendList(b []byte, l []string) []byte {
	if l == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(l))+1)
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

func appendMap[V ~string](b []byte, m map[string]V) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendString(appendString(b, k), string(m[k]))
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

// decodeRecord reads a record in either layout.
func decodeRecord(b []byte) (*Record, error) {
	return decodeRecordString(string(b))
}

// decodeRecordString reads a record from s, as Redis returns it; the
// strings of the record share s's memory.
func decodeRecordString(s string) (*Record, error) {
	if len(s) > 0 && s[0] == '{' {
		var rec Record
		if err := json.Unmarshal([]byte(s), &rec); err != nil {
			return nil, groupgate.WrapError(groupgate.Internal, err, "decode session (JSON)")
		}
		return &rec, nil
	}
	rec, err := decodeV1(s)
	if err != nil {
		return nil, groupgate.WrapError(groupgate.Internal, err, "decode session")
	}
	return rec, nil
}

var errTruncated = errors.New("truncated record")

// reader consumes a binary record; the first error sticks.
type reader struct {
	s   string
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var v uint64
	for i := 0; ; i++ {
		if i >= len(r.s) || i == binary.MaxVarintLen64 {
			r.err = errTruncated
			return 0
		}
		c := r.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			r.err = errors.New("varint overflows 64 bits")
			return 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.s = r.s[i+1:]
			return v
		}
	}
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.s) == 0 {
		r.err = errTruncated
		return 0
	}
	c := r.s[0]
	r.s = r.s[1:]
	return c
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)) {
		r.err = errTruncated
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// count reads a count of items of at least one byte each.
func (r *reader) count() int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.s)) {
		r.err = errTruncated
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

func (r *reader) list() []string {
	n := r.uvarint()
	if r.err != nil || n == 0 {
		return nil
	}
	n--
	if n > uint64(len(r.s)) {
		r.err = errTruncated
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = r.string()
	}
	return l
}

func readMap[V ~string](r *reader) map[string]V {
	n := r.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]V, n)
	for range n {
		k := r.string()
		m[k] = V(r.string())
	}
	if r.err == nil && len(m) != n {
		r.err = errors.New("duplicate map key")
	}
	return m
}

func (r *reader) time() time.Time {
	sec := r.varint()
	nsec := r.uvarint()
	if r.err == nil && nsec >= uint64(time.Second) {
		r.err = fmt.Errorf("nanoseconds %d out of range", nsec)
	}
	if r.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func decodeV1(s string) (*Record, error) {
	r := &reader{s: s}
	if v := r.byte(); r.err == nil && v != recordV1 {
		return nil, fmt.Errorf("unknown session record version %d", v)
	}
	rec := &Record{}
	rec.ID = r.string()
	rec.UserID = r.string()
	rec.Provider = r.string()
	rec.Identity.Provider = r.string()
	rec.Identity.Subject = r.string()
	rec.Identity.Username = r.string()
	rec.Identity.Email = r.string()
	rec.Identity.DisplayName = r.string()
	flags := r.byte()
	rec.Identity.EmailVerified = flags&flagEmailVerified != 0
	rec.Identity.GroupsPresent = flags&flagGroupsPresent != 0
	rec.Identity.Groups = r.list()
	rec.Identity.DroppedGroups = r.list()
	rec.Identity.DroppedGroupCount = int(r.varint())
	rec.IDToken = r.string()
	rec.IDPSessionID = r.string()
	rec.Memberships.Groups = r.list()
	rec.Memberships.OrgRoles = readMap[groupgate.OrgRole](r)
	rec.Memberships.RepoRoles = readMap[groupgate.RepoRole](r)
	rec.CreatedAt = r.time()
	rec.ExpiresAt = r.time()
	if r.err == nil && flags&^(flagEmailVerified|flagGroupsPresent) != 0 {
		r.err = fmt.Errorf("unknown flags %#x", flags)
	}
	if r.err == nil && len(r.s) != 0 {
		r.err = fmt.Errorf("%d bytes after the record", len(r.s))
	}
	if r.err != nil {
		return nil, r.err
	}
	return rec, nil
}
