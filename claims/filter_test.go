package claims

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		allowed, refused []string
	}{
		{
			name:    "an empty filter allows every group",
			allowed: []string{"eng", "ops", "", "anything at all"},
		},
		{
			name:    "include patterns are unanchored unless the pattern anchors them",
			include: []string{"^eng-", "admins"},
			allowed: []string{"eng-api", "eng-", "bsr-admins", "admins"},
			refused: []string{"xeng-api", "ops", "Eng-api"},
		},
		{
			name:    "exclude alone removes only what it matches",
			exclude: []string{"-test$"},
			allowed: []string{"eng", "test-eng"},
			refused: []string{"eng-test"},
		},
		{
			name:    "exclude wins over include",
			include: []string{"^eng-"},
			exclude: []string{"^eng-secret$"},
			allowed: []string{"eng-api"},
			refused: []string{"eng-secret", "ops"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFilter(tt.include, tt.exclude)
			if err != nil {
				t.Fatalf("NewFilter: %v", err)
			}
			for _, g := range tt.allowed {
				if !f.Allowed(g) {
					t.Errorf("Allowed(%q) = false, want true", g)
				}
			}
			for _, g := range tt.refused {
				if f.Allowed(g) {
					t.Errorf("Allowed(%q) = true, want false", g)
				}
			}
			in := append(slices.Clone(tt.refused), tt.allowed...)
			if got := f.Apply(in); !slices.Equal(got, tt.allowed) {
				t.Errorf("Apply(%q) = %q, want %q", in, got, tt.allowed)
			}
		})
	}
}

func TestNilFilterAllowsEverything(t *testing.T) {
	var f *Filter
	if !f.Allowed("eng") {
		t.Error("nil filter refused a group")
	}
	if got := f.Apply([]string{"b", "a"}); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("nil filter Apply = %q", got)
	}
}

func TestFilterApplyDoesNotModifyItsInput(t *testing.T) {
	f, err := NewFilter([]string{"^a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := []string{"b", "a1", "c", "a2"}
	f.Apply(in)
	if !slices.Equal(in, []string{"b", "a1", "c", "a2"}) {
		t.Errorf("input changed to %q", in)
	}
}

func TestNewFilterNamesEveryBadPattern(t *testing.T) {
	_, err := NewFilter([]string{"^ok$", "eng-(", "[z-a]"}, []string{"fine", "*bad"})
	if err == nil {
		t.Fatal("NewFilter accepted invalid patterns")
	}
	if !groupgate.IsCode(err, groupgate.Invalid) {
		t.Errorf("code = %q, want invalid", groupgate.ErrorCodeOf(err))
	}
	msg := groupgate.ErrorMessageOf(err)
	for _, want := range []string{`include pattern "eng-("`, `include pattern "[z-a]"`, `exclude pattern "*bad"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not name %s", msg, want)
		}
	}
	for _, good := range []string{`"^ok$"`, `"fine"`} {
		if strings.Contains(msg, good) {
			t.Errorf("message %q blames the valid pattern %s", msg, good)
		}
	}
}

// FuzzGroupFilter: any pattern either compiles into a filter that lets a
// group through exactly when it matches an include (or there is none) and
// no exclude, or is refused as Invalid naming it; Apply keeps exactly the
// allowed groups, in order.
func FuzzGroupFilter(f *testing.F) {
	f.Add("^eng-", "-test$", "eng-api")
	f.Add("", "", "")
	f.Add("(", "", "x")
	f.Add("Sales, EMEA", "(?i)emea", "Sales, EMEA")
	f.Add("^\\p{Greek}+$", "[", "αβγ")
	f.Fuzz(func(t *testing.T, include, exclude, group string) {
		// Configured patterns are short; long generated ones only make
		// regexp compilation slow enough to stall the fuzzer's workers.
		if len(include) > 64 || len(exclude) > 64 || len(group) > 256 {
			t.Skip()
		}
		flt, err := NewFilter([]string{include}, []string{exclude})
		inc, ierr := regexp.Compile(include)
		exc, eerr := regexp.Compile(exclude)
		if ierr != nil || eerr != nil {
			if err == nil || !groupgate.IsCode(err, groupgate.Invalid) {
				t.Fatalf("NewFilter(%q, %q) = %v, want Invalid", include, exclude, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("NewFilter(%q, %q) refused valid patterns: %v", include, exclude, err)
		}
		want := inc.MatchString(group) && !exc.MatchString(group)
		if got := flt.Allowed(group); got != want {
			t.Fatalf("Allowed(%q) with include %q exclude %q = %v, want %v", group, include, exclude, got, want)
		}
		if got := flt.Apply([]string{group, group}); (len(got) == 2) != want || (len(got) != 0 && len(got) != 2) {
			t.Fatalf("Apply kept %q", got)
		}
	})
}
