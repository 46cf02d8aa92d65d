package main

import "syscall"

// childAttr makes a server the bench starts (authd, nginx) get SIGTERM
// when the bench dies without stopping it (SIGKILL, a crash), so that
// nothing is left listening.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
