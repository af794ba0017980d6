// Command mkimages makes the default govmm guest: it fetches Debian 12's cloud
// kernel (or takes the one given) and builds the initrd with u-root around
// the guest agent, into a cache directory, and prints their paths in the
// images.env format (package images/imagesenv), which `make images` saves:
//
//	kernel=/repo/.cache/debian-kernel/6.1.192-2/boot/vmlinuz-6.1.0-56-cloud-amd64
//	release=6.1.0-56-cloud-amd64
//	initrd=/repo/.cache/initrd/0123456789abcdef.cpio
//
// With -generic it also fetches Debian's generic kernel of the same build
// (xz with the x86 BCJ filter, for the fast path's tests) and adds its
// generic= line; without it, the line is still written when that kernel is
// already in the cache. Progress goes to standard error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/images/imagesenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "mkimages: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkimages", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cache := fs.String("cache", "", "cache directory (default: .cache at the govmm module root)")
	kernel := fs.String("kernel", "", "use this bzImage instead of fetching Debian's cloud kernel")
	modules := fs.String("modules", "", "with -kernel: its /lib/modules/<release> directory (default: no modules)")
	generic := fs.Bool("generic", false, "also fetch Debian's generic kernel (xz with x86 BCJ; a test fixture) and name it in images.env")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: see -h", fs.Args())
	}
	if *modules != "" && *kernel == "" {
		return fmt.Errorf("-modules needs -kernel")
	}
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	root, err := images.FindModuleRoot(wd)
	if err != nil {
		return err
	}
	if *cache == "" {
		*cache = filepath.Join(root, ".cache")
	}
	// images.env names files by absolute path: its readers run elsewhere.
	if *cache, err = filepath.Abs(*cache); err != nil {
		return fmt.Errorf("cache folder: %w", err)
	}

	var g images.Guest
	if *kernel == "" {
		g, err = images.DefaultGuest(ctx, *cache, root, stderr)
	} else {
		g, err = userGuest(ctx, *kernel, *modules, *cache, root, stderr)
	}
	if err != nil {
		return err
	}
	env := imagesenv.Guest{Kernel: g.Kernel.Vmlinuz, Release: g.Kernel.Release, Initrd: g.Initrd}
	if *generic {
		k, err := images.DebianGenericKernel(ctx, *cache, stderr)
		if err != nil {
			return err
		}
		env.Generic = k.Vmlinuz
	} else if k, ok := images.CachedDebianGenericKernel(ctx, *cache); ok {
		env.Generic = k.Vmlinuz // fetched before: keep naming it
	}
	return imagesenv.Write(stdout, env)
}

func userGuest(ctx context.Context, kernel, modules, cache, root string, log io.Writer) (images.Guest, error) {
	k, err := images.KernelFromPath(kernel, modules)
	if err != nil {
		return images.Guest{}, err
	}
	initrd, err := images.BuildInitrd(ctx, images.InitrdOptions{CacheDir: cache, ModuleRoot: root, Kernel: k, Log: log})
	if err != nil {
		return images.Guest{}, err
	}
	return images.Guest{Kernel: k, Initrd: initrd}, nil
}
