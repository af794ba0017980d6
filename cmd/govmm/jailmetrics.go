package main

import (
	"fmt"
	"io"
	"os"

	"github.com/govmm/govmm/jail"
)

// jailCgroup returns the control API's source of the jail's cgroup usage
// for /v1/metrics: the counter files govmm jail left open for govmm (see
// jail.CountersEnv). Nil outside a jail.
func jailCgroup(stderr io.Writer) func() any {
	c, err := jail.CountersFromEnv(os.Getenv(jail.CountersEnv))
	if err != nil {
		fmt.Fprintf(stderr, "govmm: %v; /v1/metrics leaves the cgroup out\n", err)
		return nil
	}
	if c == nil {
		return nil
	}
	return func() any { return c.Usage() }
}
