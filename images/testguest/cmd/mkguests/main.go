// Command mkguests builds the project's test guests and teaching guests
// (lessons) into a cache folder, with a copy of the host's gdb and its
// libraries (the gdb kit), and prints where they are, so tests that
// cannot run gcc or find gdb (inside the emulated test machine) find them
// built.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/images/testguest/lessons"
)

func main() {
	cache := flag.String("cache", ".cache", "cache folder for the built guests")
	flag.Parse()
	g, err := testguest.Build(*cache)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkguests:", err)
		os.Exit(1)
	}
	fmt.Println(g.Dir)
	l, err := lessons.Build(*cache)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkguests:", err)
		os.Exit(1)
	}
	fmt.Println(l)
	kit, err := lessons.BuildGDBKit(*cache)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkguests:", err)
		os.Exit(1)
	}
	if kit != "" {
		fmt.Println(kit)
	}
}
