package storetest

import (
	"encoding/json"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func (s suite) audit(t *testing.T) {
	t.Run("an empty log lists nothing", func(t *testing.T) {
		ctx, st := s.fresh(t)
		if got := must[[]groupgate.AuditEvent](t, "list")(st.ListAudit(ctx, 0, 0)); len(got) != 0 {
			t.Fatalf("ListAudit = %+v, want none", got)
		}
	})

	t.Run("appended events get increasing IDs, keep their fields and are paged after an ID", func(t *testing.T) {
		ctx, st := s.fresh(t)
		in := []groupgate.AuditEvent{
			{Actor: "alice", Action: "mapping.add", TargetType: "org_mapping", TargetID: "m1", After: json.RawMessage(`{"group":"eng","role":"ADMIN"}`)},
			{Actor: "scim", Action: "user.update", TargetType: "user", TargetID: "u1", Before: json.RawMessage(`{"active":true}`), After: json.RawMessage(`{"active":false}`), At: fixedTime(7)},
			{Actor: "bob", Action: "mapping.remove", TargetType: "org_mapping", TargetID: "m1", Before: json.RawMessage(`{"group":"eng"}`)},
			{Actor: "system", Action: "noop"},
		}
		var events []groupgate.AuditEvent
		for i, ev := range in {
			got := must[groupgate.AuditEvent](t, "append")(st.AppendAudit(ctx, ev))
			if i > 0 && got.ID <= events[i-1].ID {
				t.Fatalf("event %d has ID %d, not above %d", i, got.ID, events[i-1].ID)
			}
			checkTime(t, "At", got.At)
			want := ev
			want.ID = got.ID
			if ev.At.IsZero() {
				want.At = got.At
			}
			wantEqual(t, "appended event", got, want)
			events = append(events, got)
		}
		wantEqual(t, "all events", must[[]groupgate.AuditEvent](t, "list")(st.ListAudit(ctx, 0, 0)), events)
		cases := []struct {
			name    string
			afterID int64
			limit   int
			want    []groupgate.AuditEvent
		}{
			{"after the first event", events[0].ID, 0, events[1:]},
			{"the first two", 0, 2, events[:2]},
			{"two after the first", events[0].ID, 2, events[1:3]},
			{"after the last event", events[3].ID, 0, nil},
			{"a limit above the count", 0, 100, events},
		}
		for _, tc := range cases {
			got := must[[]groupgate.AuditEvent](t, "list "+tc.name)(st.ListAudit(ctx, tc.afterID, tc.limit))
			if len(tc.want) == 0 {
				if len(got) != 0 {
					t.Errorf("%s: got %+v, want none", tc.name, got)
				}
				continue
			}
			wantEqual(t, tc.name, got, tc.want)
		}
	})

	t.Run("a search keeps events matching every set field, newest first, paged back by ID", func(t *testing.T) {
		ctx, st := s.fresh(t)
		in := []groupgate.AuditEvent{
			{Actor: "user:a", Action: "org_mapping.add", TargetType: "organization", TargetID: "o1"},
			{Actor: "user:b", Action: "org_mapping.add", TargetType: "organization", TargetID: "o2"},
			{Actor: "user:a", Action: "org_mapping.remove", TargetType: "organization", TargetID: "o1"},
			{Actor: "user:a", Action: "org_mapping.add", TargetType: "organization", TargetID: "o2"},
			{Actor: "scim", Action: "user.update", TargetType: "user", TargetID: "u1"},
		}
		var ev []groupgate.AuditEvent
		for _, e := range in {
			ev = append(ev, must[groupgate.AuditEvent](t, "append")(st.AppendAudit(ctx, e)))
		}
		cases := []struct {
			name  string
			f     store.AuditFilter
			limit int
			want  []groupgate.AuditEvent
		}{
			{"no filter lists all, newest first", store.AuditFilter{}, 0, []groupgate.AuditEvent{ev[4], ev[3], ev[2], ev[1], ev[0]}},
			{"by actor", store.AuditFilter{Actor: "user:a"}, 0, []groupgate.AuditEvent{ev[3], ev[2], ev[0]}},
			{"by action", store.AuditFilter{Action: "org_mapping.add"}, 0, []groupgate.AuditEvent{ev[3], ev[1], ev[0]}},
			{"by target", store.AuditFilter{TargetID: "o2"}, 0, []groupgate.AuditEvent{ev[3], ev[1]}},
			{"by actor, action and target together", store.AuditFilter{Actor: "user:a", Action: "org_mapping.add", TargetID: "o1"}, 0, []groupgate.AuditEvent{ev[0]}},
			{"a first page", store.AuditFilter{Actor: "user:a"}, 2, []groupgate.AuditEvent{ev[3], ev[2]}},
			{"the page before an ID", store.AuditFilter{Actor: "user:a", BeforeID: ev[2].ID}, 2, []groupgate.AuditEvent{ev[0]}},
			{"nothing matches", store.AuditFilter{Actor: "nobody"}, 0, nil},
		}
		for _, tc := range cases {
			got := must[[]groupgate.AuditEvent](t, "search "+tc.name)(st.SearchAudit(ctx, tc.f, tc.limit))
			if len(tc.want) == 0 {
				if len(got) != 0 {
					t.Errorf("%s: got %+v, want none", tc.name, got)
				}
				continue
			}
			wantEqual(t, tc.name, got, tc.want)
		}
	})
}
