//go:build !linux

package main

import "syscall"

// orphanSignal: only Linux can stop a child when its parent dies.
func orphanSignal() *syscall.SysProcAttr { return nil }
