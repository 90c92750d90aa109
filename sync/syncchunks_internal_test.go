package sync

import (
	"fmt"
	"slices"
	"testing"
)

// A change reaching many users is resolved in growing chunks; every user
// must be in exactly one chunk, in order, whatever the count.
func TestSyncChunksCoverEveryUserOnceInGrowingChunks(t *testing.T) {
	for _, n := range []int{0, 1, firstSyncChunk - 1, firstSyncChunk, firstSyncChunk + 1, 3*firstSyncChunk + 1, 10_000, 100_000} {
		t.Run(fmt.Sprint(n, " users"), func(t *testing.T) {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprint("u", i)
			}
			var got []string
			want := firstSyncChunk
			chunks := 0
			for c := range syncChunks(ids) {
				chunks++
				if len(c) == 0 {
					t.Fatalf("chunk %d is empty", chunks)
				}
				if len(got)+len(c) < n && len(c) != want {
					t.Fatalf("chunk %d holds %d users, want %d", chunks, len(c), want)
				}
				if len(c) > want {
					t.Fatalf("last chunk %d holds %d users, more than %d", chunks, len(c), want)
				}
				got = append(got, c...)
				want = min(2*want, maxSyncChunk)
			}
			if !slices.Equal(got, ids) {
				t.Fatalf("chunks hold %d users, want the %d given, in order", len(got), n)
			}
		})
	}
}
