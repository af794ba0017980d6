package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/images/agentproto"
	"github.com/govmm/govmm/images/moddep"
)

// loadModules loads every module in dir/modules.dep, dependencies first,
// with load, and prints one line per module to out. It goes on past
// failures and returns how many modules were loaded and how many failed. A
// module the kernel already has (EEXIST) counts as loaded.
func loadModules(out io.Writer, dir string, load func(image []byte) error) (loaded, failed int) {
	order, err := readOrder(filepath.Join(dir, "modules.dep"))
	if err != nil {
		fmt.Fprintf(out, "%s none: %v\n", agentproto.Module, err)
		return 0, 0
	}
	for _, p := range order {
		name := moddep.Name(p)
		image, err := os.ReadFile(filepath.Join(dir, p))
		if err == nil {
			err = load(image)
		}
		switch {
		case err == nil:
			fmt.Fprintf(out, "%s %s ok\n", agentproto.Module, name)
			loaded++
		case errors.Is(err, unix.EEXIST):
			fmt.Fprintf(out, "%s %s ok (already loaded)\n", agentproto.Module, name)
			loaded++
		default:
			fmt.Fprintf(out, "%s %s FAILED: %v\n", agentproto.Module, name, err)
			failed++
		}
	}
	return loaded, failed
}

// readOrder reads a modules.dep file and returns its modules in load order.
func readOrder(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := moddep.Parse(f)
	if err != nil {
		return nil, err
	}
	return d.LoadOrder()
}
