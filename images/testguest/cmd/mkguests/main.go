// Command mkguests builds the project's test guests into a cache folder
// and prints where they are, so tests that cannot run gcc (inside the
// emulated test machine) find them built.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/govmm/govmm/images/testguest"
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
}
