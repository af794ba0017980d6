package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/govmm/govmm/machine"
)

// options are the parsed command line.
type options struct {
	kernel, initrd, cmdline string
	mem                     uint64
	cpus                    int
	boot                    machine.BootPath
	serial                  string
	kvmPath                 string
	cacheDir                string
	hide                    machine.HideMode
	debugDevices            bool // -debug-devices on
	devices                 []machine.Device
	pit                     machine.PITMode
	confine                 confineOptions
	verbose                 bool
	help                    bool
	reboot                  rebootMode      // -reboot
	shutdownTimeout         time.Duration   // -shutdown-timeout: SIGTERM's grace period
	dumpACPI                string          // -dump-acpi DIR
	inspect                 inspectOptions  // -trace, -stats, -flight, -gdb (inspect.go)
	mob                     mobilityOptions // -api, -snapshot-dir, -restore, -incoming (mobility.go)
}

const defaultCmdline = "console=ttyS0 reboot=k panic=-1"

// parseFlags reads the command line. Long flags may be written with one
// dash, as the design card does (-kernel), or two (--kernel).
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := pflag.NewFlagSet("govmm", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	var v vmFlagValues
	fs.StringVar(&o.kernel, "kernel", "", "the guest kernel: a Linux bzImage or an uncompressed ELF vmlinux (required)")
	fs.StringVar(&o.initrd, "initrd", "", "an initial ramdisk to load for the kernel")
	fs.StringVar(&o.cmdline, "append", defaultCmdline, "the kernel command line")
	addVMFlags(fs, o, &v)
	var p powerFlagValues
	addPowerFlags(fs, o, &p)
	addInspectFlags(fs, &o.inspect)
	addMobilityFlags(fs, &o.mob)
	fs.StringVar(&o.serial, "serial", "stdio", "where the serial console goes: stdio (the terminal, raw, Ctrl-A x quits), file:PATH (output only), none")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print what the VMM does: boot path, layout, exit counts, fixups")
	fs.BoolVarP(&o.help, "help", "h", false, "print this help")
	fs.BoolVar(&o.confine.printSeccomp, "print-seccomp", false, "print the seccomp allow-list (the system calls and ioctls govmm may make once the VM is set up) and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: govmm -kernel FILE [-initrd FILE] [-mem SIZE] [-cpus N] [-append CMDLINE] [flags]\n"+
			"       govmm exec [flags] -- CMD...   (run CMD in the default Linux guest; see govmm exec -h)\n"+
			"       govmm jail -uid UID -gid GID [jail flags] -- [govmm flags]   (run govmm in a jail; see govmm jail -h)\n"+
			"       govmm -restore DIR | -incoming tcp:HOST:PORT [flags]   (a saved or migrating guest instead of a kernel)\n"+
			"       govmm ctl -api PATH COMMAND   (control a govmm started with -api PATH; see govmm ctl -h)\n"+
			"       govmm step [flags]   (hold the guest at its first instruction and step through its exits; see govmm step -h)\n\n"+
			"Runs one virtual machine on KVM. Exit status: 0 when the guest powers off,\n"+
			"123 when it resets (see -reboot), the guest's status when it writes one to\n"+
			"the debug-exit port (0xf4), 130/143 on SIGINT/SIGTERM, 159 when the seccomp\n"+
			"filter killed govmm, 1 with a one-line reason on any error.\n\nFlags (one dash or two):\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(longDashes(fs, args)); err != nil {
		if err == pflag.ErrHelp {
			return &options{help: true}, nil
		}
		return nil, fmt.Errorf("%w (run govmm -h for the flags)", err)
	}
	if o.help {
		fs.Usage()
		return o, nil
	}
	if o.confine.printSeccomp {
		return o, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: govmm takes only flags (run govmm -h)", fs.Arg(0))
	}
	if err := o.mob.apply(fs); err != nil {
		return nil, err
	}
	if o.kernel == "" && o.dumpACPI == "" && !o.mob.bootless() {
		return nil, fmt.Errorf("no kernel: give one with -kernel FILE (a bzImage or an ELF vmlinux), or -restore DIR or -incoming tcp:HOST:PORT")
	}
	if err := v.apply(o); err != nil {
		return nil, err
	}
	if err := p.apply(o); err != nil {
		return nil, err
	}
	if o.serial != "stdio" && o.serial != "none" && !strings.HasPrefix(o.serial, "file:") {
		return nil, fmt.Errorf("-serial %q: give stdio, none or file:PATH", o.serial)
	}
	return o, nil
}

// vmFlagValues are the shared flags' raw words, checked by apply.
type vmFlagValues struct {
	mem, boot, hide, debugDevices, pit string
	devices                            []string
	virtio                             []string // -drive, -net, -rng, as device words (virtio_flags.go)
}

// addVMFlags adds the flags govmm and govmm exec share: the machine's
// size, boot path, KVM device, cache and CPUID hiding.
func addVMFlags(fs *pflag.FlagSet, o *options, v *vmFlagValues) {
	fs.StringVar(&v.mem, "mem", "512M", "guest RAM: a number with K, M, G or T (binary units); a bare number is MiB")
	fs.IntVar(&o.cpus, "cpus", 1, "number of vCPUs")
	fs.StringVar(&v.boot, "boot", "auto", "how to start a bzImage: fast (decompress it in the VMM and boot the ELF inside, cached), bzimage (let the kernel decompress itself), auto (fast, falling back to bzimage), real (an ELF below 1 MiB started in real mode at its entry, as firmware starts a boot sector: the teaching guests)")
	fs.StringVar(&o.kvmPath, "kvm", "/dev/kvm", "the KVM device")
	fs.StringVar(&o.cacheDir, "cache", defaultCacheDir(), "cache folder for decompressed kernels")
	fs.StringVar(&v.hide, "hide-cpuid", "auto", "hide CPU features KVM's emulator cannot run on PVM hosts: auto (on PVM hosts only), on, off")
	addConfineFlags(fs, &o.confine)
	fs.StringVar(&v.debugDevices, "debug-devices", "on", "govmm's guest-visible debug devices: the debug-exit device (port 0xf4 and MMIO 0xd0001000; with it a guest chooses govmm's exit status and logs boot-timer lines) and COM1's MMIO alias (0xd0000000): on, or off for a guest you do not trust")
	fs.StringArrayVar(&v.devices, "device", nil, "add an optional device (repeat for more): pci-testdev, a PCI test device with BARs, MSI-X and INTx (devices/pci); without any, PCI bus 0 holds only the host bridge")
	addVirtioFlags(fs, v)
	fs.StringVar(&v.pit, "pit", "kernel", "the 8254 PIT the guest sees: kernel (KVM's in-kernel PIT) or user (govmm's model: every PIT access exits to govmm, IRQ 0 comes from a host timer)")
}

// apply checks the shared flags' words and puts their values in o.
func (v *vmFlagValues) apply(o *options) error {
	var err error
	if o.mem, err = parseSize(v.mem); err != nil {
		return fmt.Errorf("-mem: %w", err)
	}
	if o.cpus < 1 || o.cpus > 255 {
		return fmt.Errorf("-cpus %d: give between 1 and 255", o.cpus)
	}
	if o.boot, err = machine.ParseBootPath(v.boot); err != nil {
		return fmt.Errorf("-boot: %w", err)
	}
	if o.hide, err = machine.ParseHideMode(v.hide); err != nil {
		return fmt.Errorf("-hide-cpuid: %w", err)
	}
	if err := o.confine.apply(); err != nil {
		return err
	}
	o.devices = o.devices[:0]
	for _, d := range append(append([]string{}, v.devices...), v.virtio...) {
		dev, err := machine.ParseDevice(d)
		if err != nil {
			return fmt.Errorf("-device: %w", err)
		}
		o.devices = append(o.devices, dev)
	}
	if o.pit, err = machine.ParsePITMode(v.pit); err != nil {
		return fmt.Errorf("-pit: %w", err)
	}
	switch v.debugDevices {
	case "on":
		o.debugDevices = true
	case "off":
		o.debugDevices = false
	default:
		return fmt.Errorf("-debug-devices %q: give on or off", v.debugDevices)
	}
	return nil
}

// longDashes rewrites -name and -name=value into --name forms for every
// long flag fs knows, leaving shorthands (-v, -h) and values alone.
func longDashes(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(a) > 2 {
			name, _, _ := strings.Cut(a[1:], "=")
			if fs.Lookup(name) != nil {
				a = "-" + a
			}
		}
		out = append(out, a)
		// Keep a flag's separate value as it is, even if it starts with a dash.
		if strings.HasPrefix(a, "--") && !strings.Contains(a, "=") {
			if f := fs.Lookup(a[2:]); f != nil && f.Value.Type() != "bool" && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		}
	}
	return out
}

// defaultCacheDir is $GOVMM_CACHE, else govmm in the user's cache folder
// ($XDG_CACHE_HOME or ~/.cache), else, with neither $XDG_CACHE_HOME nor
// $HOME set, a folder named with the user's uid in the temporary folder.
// The kernel cache creates whichever it is 0700, and uses it only while it
// is not a symlink, belongs to the user and is closed to others' writes
// (boot.DecompressCached), which matters most in a shared /tmp.
func defaultCacheDir() string {
	if d := os.Getenv("GOVMM_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "govmm")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("govmm-cache-%d", os.Geteuid()))
}
