package sqlite

import (
	"testing"

	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/storetest"
)

// TestConformance runs the store contract suite on a fresh database file
// per subtest.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(tb testing.TB) store.Store { return openTemp(tb) })
}
