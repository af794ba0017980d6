package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// moduleMarker starts each line that reports a module.
const moduleMarker = "GOVMM-AGENT-MODULE"

// loadModules loads every module in dir/modules.dep, dependencies first,
// with load, and prints one line per module to out. It goes on past
// failures and returns how many modules were loaded and how many failed. A
// module the kernel already has (EEXIST) counts as loaded.
func loadModules(out io.Writer, dir string, load func(image []byte) error) (loaded, failed int) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		fmt.Fprintf(out, "%s none: %v\n", moduleMarker, err)
		return 0, 0
	}
	dep, err := parseDep(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(out, "%s none: %v\n", moduleMarker, err)
		return 0, 0
	}
	order, err := dep.loadOrder()
	if err != nil {
		fmt.Fprintf(out, "%s none: %v\n", moduleMarker, err)
		return 0, 0
	}
	for _, p := range order {
		name := moduleName(p)
		image, err := os.ReadFile(filepath.Join(dir, p))
		if err == nil {
			err = load(image)
		}
		switch {
		case err == nil:
			fmt.Fprintf(out, "%s %s ok\n", moduleMarker, name)
			loaded++
		case errors.Is(err, unix.EEXIST):
			fmt.Fprintf(out, "%s %s ok (already loaded)\n", moduleMarker, name)
			loaded++
		default:
			fmt.Fprintf(out, "%s %s FAILED: %v\n", moduleMarker, name, err)
			failed++
		}
	}
	return loaded, failed
}
