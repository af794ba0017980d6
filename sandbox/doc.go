// Package sandbox confines the govmm process itself, so that a guest that
// escapes device emulation gains as little as possible: a seccomp filter
// (allowlist.go is the allow-list, filter.go assembles it into classic
// BPF, sysnames_amd64.go and sysnumbers_amd64.go name and number the
// calls, made by go generate from golang.org/x/sys; Install loads it on
// every thread once the VM is set up) and Landlock, which limits the
// files the process can open to the ones its VM was given.
//
// The jailer (package jail) adds what needs privileges from outside:
// namespaces, a fresh root, cgroups, another uid, no capabilities.
package sandbox
