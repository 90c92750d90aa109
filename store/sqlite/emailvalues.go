package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"unicode/utf8"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/internal/sqlfilter"
)

// user_email_values (migration 0009) indexes the string values of the
// objects in a user's SCIM "emails" array, for the filter translation's
// ValueIndex. Every write of users.scim goes through indexEmailValues in
// the same transaction; a user's rows go with the user (ON DELETE
// CASCADE).

// emailElementValues reads the values of doc's emails with the JSON
// functions and conditions the filter translation uses on the document
// (dialect.ArrayExists, jsonValue.OnlyText), so that the index holds
// exactly the values a filter can match.
const emailElementValues = `SELECT json_extract(e.value, '$."value"') FROM json_each(?1, '$."emails"') e
	WHERE json_type(?1, '$."emails"') = 'array' AND e.type = 'object' AND json_type(e.value, '$."value"') = 'text'`

// insertEmailValues stores the (folded, reversed) pairs of a JSON array
// for one user; a value listed twice is stored once.
const insertEmailValues = `INSERT OR IGNORE INTO user_email_values (user_id, value_fold, value_rev)
	SELECT ?1, json_extract(p.value, '$[0]'), json_extract(p.value, '$[1]') FROM json_each(?2) p`

// indexEmailValues replaces the indexed email values of user id by those
// of doc (NULL: none). replace is false for a user just inserted, who has
// none yet.
func (s *Store) indexEmailValues(ctx context.Context, q queryer, id string, doc sql.NullString, replace bool) error {
	if replace {
		if _, err := q.ExecContext(ctx, `DELETE FROM user_email_values WHERE user_id = ?`, id); err != nil {
			return s.wrap(ctx, err, "clear email values of user %s", id)
		}
	}
	if !doc.Valid {
		return nil
	}
	rows, err := q.QueryContext(ctx, emailElementValues, doc.String)
	if err != nil {
		return s.wrap(ctx, err, "read email values of user %s", id)
	}
	var pairs [][2]string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			_ = rows.Close()
			return s.wrap(ctx, err, "read email values of user %s", id)
		}
		folded := sqlfilter.FoldASCII(v)
		pairs = append(pairs, [2]string{folded, reverseText(folded)})
	}
	if err := rows.Close(); err != nil {
		return s.wrap(ctx, err, "read email values of user %s", id)
	}
	if err := rows.Err(); err != nil {
		return s.wrap(ctx, err, "read email values of user %s", id)
	}
	if len(pairs) == 0 {
		return nil
	}
	arg, err := json.Marshal(pairs)
	if err != nil {
		return groupgate.WrapError(groupgate.Internal, err, "encode email values of user %s", id)
	}
	if _, err := q.ExecContext(ctx, insertEmailValues, id, string(arg)); err != nil {
		return s.wrap(ctx, err, "index email values of user %s", id)
	}
	return nil
}

// reverseText reverses s by UTF-8 sequences (an invalid byte counts as
// one), so that s ends with t exactly when reverseText(s) starts with
// reverseText(t), for valid UTF-8 s and t.
func reverseText(s string) string {
	out := make([]byte, len(s))
	end := len(out)
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		copy(out[end-n:end], s[i:i+n])
		end -= n
		i += n
	}
	return string(out)
}

// prefixEnd is the least string greater than every string starting with
// p in byte order (SQLite's BINARY collation), so that "x >= p AND x <
// prefixEnd(p)" is a range an index serves; ok is false when there is
// none (p empty, or all 0xff bytes).
func prefixEnd(p string) (end string, ok bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// ValueIndex serves eq, sw and ew on users' email values from
// user_email_values: an equality or a range on the folded value (eq,
// sw), a range on the reversed one (ew). co has no index: it scans the
// side table (two short strings per user) instead of the documents.
func (dialect) ValueIndex(p *sqlfilter.Params, alias, attr string, op store.CompareOp, folded string) string {
	if alias != "u" || attr != "emails" || folded == "" {
		return ""
	}
	in := func(cond string) string {
		return alias + ".id IN (SELECT user_id FROM user_email_values WHERE " + cond + ")"
	}
	prefix := func(col, p0 string) string {
		end, ok := prefixEnd(p0)
		if !ok {
			return in(col + " >= " + p.Add(p0))
		}
		return in(col + " >= " + p.Add(p0) + " AND " + col + " < " + p.Add(end))
	}
	switch op {
	case store.OpEq:
		return in("value_fold = " + p.Add(folded))
	case store.OpSw:
		return prefix("value_fold", folded)
	case store.OpEw:
		return prefix("value_rev", reverseText(folded))
	case store.OpCo:
		// No index serves a substring: the side table is scanned instead
		// of every document. value_fold is folded already, so a plain
		// substring search (no pattern, nothing to escape) is exact.
		return in("instr(value_fold, " + p.Add(folded) + ") > 0")
	}
	return ""
}
