package claims

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/groupgate/groupgate"
)

// Filter decides which IdP groups groupgate sees at all (ARCHITECTURE.md §1.7).
// A group is allowed when it matches at least one include pattern (or there
// are none) and no exclude pattern: exclude wins. Patterns are Go regular
// expressions matched unanchored, so "^eng-" means "starts with eng-".
//
// A nil *Filter allows every group. A Filter is immutable and safe for
// concurrent use.
type Filter struct {
	include []*regexp.Regexp
	exclude []*regexp.Regexp
}

// NewFilter compiles the include and exclude patterns. Every pattern that
// does not compile is named in one groupgate.Invalid error, so that a
// configuration check reports them all at once.
func NewFilter(include, exclude []string) (*Filter, error) {
	var (
		problems []string
		causes   []error
	)
	compile := func(list string, patterns []string) []*regexp.Regexp {
		out := make([]*regexp.Regexp, 0, len(patterns))
		for _, p := range patterns {
			re, err := regexp.Compile(p)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s pattern %q is not a valid regular expression", list, p))
				causes = append(causes, err)
				continue
			}
			out = append(out, re)
		}
		return out
	}
	f := &Filter{include: compile("include", include), exclude: compile("exclude", exclude)}
	if len(problems) > 0 {
		return nil, groupgate.WrapError(groupgate.Invalid, errors.Join(causes...),
			"group filter: %s", strings.Join(problems, "; "))
	}
	return f, nil
}

// Allowed reports whether group passes the filter.
func (f *Filter) Allowed(group string) bool {
	if f == nil {
		return true
	}
	for _, re := range f.exclude {
		if re.MatchString(group) {
			return false
		}
	}
	if len(f.include) == 0 {
		return true
	}
	for _, re := range f.include {
		if re.MatchString(group) {
			return true
		}
	}
	return false
}

// Apply returns the allowed groups of groups, in their order, in a new
// slice; groups itself is not modified.
func (f *Filter) Apply(groups []string) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if f.Allowed(g) {
			out = append(out, g)
		}
	}
	return out
}

// Split divides groups into the allowed ones and the ones the filter hides,
// both in their order. dropped holds at most max names (all when max < 0);
// total counts every hidden one, so that a caller can say "and N more".
func (f *Filter) Split(groups []string, max int) (kept, dropped []string, total int) {
	kept = make([]string, 0, len(groups))
	for _, g := range groups {
		if f.Allowed(g) {
			kept = append(kept, g)
			continue
		}
		total++
		if max < 0 || len(dropped) < max {
			dropped = append(dropped, g)
		}
	}
	return kept, dropped, total
}
