package machine

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
)

// Loaded says what loadKernel did, for the verbose log and for tests.
type Loaded struct {
	Path     string // "elf", "fast" or "bzimage"
	CacheHit bool   // the fast path found the decompressed kernel cached
	Fallback error  // why BootAuto fell back from the fast path, if it did
	Kernel   *boot.Kernel
	Initrd   *boot.Initrd // nil without one
	Entry    *boot.EntryState
	// Cmdline is the command line the guest got: Config.Cmdline, with the
	// kernel parameters for the hidden CPU features added when the guest
	// is Linux on a PVM host (cmdline.go).
	Cmdline string
}

// loadKernel puts the kernel, the initrd, the command line and the zero
// page into guest RAM and returns the state the boot vCPU starts in.
func loadKernel(mem *memory.Memory, c *Config, host kvm.HostKind, log io.Writer) (*Loaded, error) {
	if c.restoring() {
		return &Loaded{Path: "restore", Cmdline: c.Cmdline}, nil // RAM holds the guest as it was
	}
	if c.Boot == BootReal {
		return loadRealMode(mem, c, log)
	}
	l := &Loaded{}
	var err error
	switch {
	case bytes.HasPrefix(c.Kernel, []byte("\x7fELF")):
		l.Path = "elf"
		if l.Kernel, err = boot.LoadELF(mem, c.Kernel); err != nil {
			return nil, err
		}
		l.Kernel.Header = boot.DefaultSetupHeader()
	default:
		if l.Kernel, err = loadBzImage(mem, c, l); err != nil {
			return nil, err
		}
	}
	if len(c.Initrd) > 0 {
		if l.Initrd, err = boot.LoadInitrd(mem, l.Kernel, c.Initrd); err != nil {
			return nil, err
		}
	}
	// The ECAM window is reserved in the e820 map so that nothing is placed
	// there; Linux finds ECAM through ACPI's MCFG table (acpi.go), and
	// checks that the e820 map reserves it.
	e820, err := boot.E820Map(mem, boot.E820Entry{Addr: uint64(boot.PCIeECAMStart), Size: boot.PCIeECAMSize, Type: boot.E820Reserved})
	if err != nil {
		return nil, err
	}
	l.Cmdline = c.Cmdline
	if wantLinuxHideParams(c.Hide, host) && isLinux(l, c.Kernel) {
		l.Cmdline = addLinuxHideParams(c, log)
	}
	bp := &boot.BootParams{
		Header:      l.Kernel.Header,
		Cmdline:     l.Cmdline,
		CmdlineAddr: boot.CmdlineAddr,
		E820:        e820,
		ACPIRSDP:    boot.RSDPAddr, // also found by a scan of the BIOS area
	}
	if l.Initrd != nil {
		bp.InitrdAddr, bp.InitrdSize = l.Initrd.Addr, l.Initrd.Size
	}
	if err := boot.WriteBootParams(mem, bp); err != nil {
		return nil, err
	}
	if l.Entry, err = boot.LongModeEntry(mem, uint64(l.Kernel.Entry), boot.ZeroPageAddr); err != nil {
		return nil, err
	}
	if c.Verbose && log != nil {
		fmt.Fprintf(log, "govmm: kernel via %s path at %v..%v, entry %v", l.Path, l.Kernel.LoadAddr, l.Kernel.End, l.Kernel.Entry)
		if l.Initrd != nil {
			fmt.Fprintf(log, ", initrd %d bytes at %v", l.Initrd.Size, l.Initrd.Addr)
		}
		fmt.Fprintln(log)
	}
	return l, nil
}

// loadBzImage takes the fast path if asked and possible, else loads the
// bzImage for the kernel to decompress itself.
func loadBzImage(mem *memory.Memory, c *Config, l *Loaded) (*boot.Kernel, error) {
	bz, err := boot.ParseBzImage(c.Kernel)
	if err != nil {
		return nil, err
	}
	if c.Boot != BootBzImage {
		k, hit, err := loadFast(mem, c, bz)
		if err == nil {
			l.Path, l.CacheHit = "fast", hit
			return k, nil
		}
		if c.Boot == BootFast {
			return nil, fmt.Errorf("fast boot path: %w (use -boot bzimage to let the kernel decompress itself)", err)
		}
		l.Fallback = err
		if c.Verbose && c.Log != nil {
			fmt.Fprintf(c.Log, "govmm: fast path unavailable, booting the bzImage as is: %v\n", err)
		}
	}
	l.Path = "bzimage"
	return boot.LoadBzImage(mem, c.Kernel)
}

// loadFast decompresses the payload (through the cache when there is one)
// and loads the ELF inside, with the bzImage's setup header for the zero
// page.
func loadFast(mem *memory.Memory, c *Config, bz *boot.BzImage) (*boot.Kernel, bool, error) {
	var (
		elf    []byte
		hit    bool
		err    error
		cached boot.Cached // a hit is the cache file mapped, until loaded below
	)
	if c.CacheDir == "" {
		elf, err = boot.Decompress(c.Kernel)
	} else {
		cached, err = boot.DecompressCached(c.CacheDir, c.Kernel)
		elf, hit = cached.ELF, cached.Hit
		if cached.Stale != nil && c.Verbose && c.Log != nil {
			fmt.Fprintf(c.Log, "govmm: kernel cache: decompressed the kernel again, not using %v\n", cached.Stale)
		}
		if err != nil && elf != nil && !errors.Is(err, boot.ErrNoFastPath) {
			// Only writing the cache failed: boot anyway, say so.
			if c.Log != nil {
				fmt.Fprintf(c.Log, "govmm: warning: %v\n", err)
			}
			err = nil
		}
	}
	if err != nil {
		return nil, false, err
	}
	defer cached.Close()
	k, err := boot.LoadELF(mem, elf)
	if err != nil {
		return nil, false, fmt.Errorf("loading the decompressed kernel: %w", err)
	}
	k.Header = bz.Header
	return k, hit, nil
}
