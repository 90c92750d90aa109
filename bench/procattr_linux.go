package main

import "syscall"

// orphanSignal makes the kernel stop a process the harness started if
// the harness dies first (Ctrl-C in the middle of a run), so that no
// oauth2-proxy or target process outlives it.
func orphanSignal() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
