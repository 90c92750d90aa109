// Package sqlfilter translates a store.Filter and a sort key into a
// parameterized SQL condition and ORDER BY, once for every SQL backend; a
// Dialect supplies what differs. It owns no connection and must not put a
// value into SQL text: values are bound parameters, names are whitelisted.
package sqlfilter
