// Command mklessons builds the teaching guests and prints the folder that
// holds them (hello16.elf, protected.elf, longmode.elf, ring3.elf,
// timer.elf, virtio.elf):
//
//	L=$(go run ./images/testguest/lessons/cmd/mklessons)
//	bin/govmm step -boot real -mem 16M -kernel $L/hello16.elf
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/govmm/govmm/images/testguest/lessons"
)

func main() {
	cache := flag.String("cache", defaultCache(), "cache folder for the built lessons")
	flag.Parse()
	dir, err := lessons.Build(*cache)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mklessons:", err)
		os.Exit(1)
	}
	fmt.Println(dir)
}

// defaultCache is $GOVMM_CACHE, else .cache as make uses it.
func defaultCache() string {
	if d := os.Getenv("GOVMM_CACHE"); d != "" {
		return d
	}
	return ".cache"
}
