// Package keyset remembers where the pages of a listing in the default
// order (creation, then ID) ended, so that a backend serves the next page
// of a walk after the last row it saw instead of counting off its
// startIndex again. It owns no connection and must not decide what a
// listing's key is: the backend builds it from the query.
package keyset
