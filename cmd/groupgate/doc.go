// Command groupgate is the binary: it parses flags, loads and validates the
// YAML configuration, and wires packages together in small build functions.
// It decides nothing about logins or access; that belongs to the packages.
package main
