package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// addVirtioFlags adds -drive, -net and -rng (govmm and govmm exec). Each
// becomes a virtio device word (machine.ParseDevice checks it), in the
// order given, after the -device ones.
func addVirtioFlags(fs *pflag.FlagSet, v *vmFlagValues) {
	fs.Func("drive", "add a virtio-blk disk (repeat for more): file=PATH[,readonly=on][,cache=writeback|writethrough|unsafe][,serial=ID]; a raw image or a block device, whose size is the disk's (Linux names them vda, vdb, ... in order)", func(s string) error {
		w, err := driveWord(s)
		if err != nil {
			return err
		}
		v.virtio = append(v.virtio, w)
		return nil
	})
	fs.Func("net", "add a virtio-net card (repeat for more): tap,ifname=NAME[,mac=ADDR] (a TAP device, created when missing, which needs CAP_NET_ADMIN), user[,hostfwd=tcp::HOSTPORT-:GUESTPORT]...[,mac=ADDR] (user-mode networking: no privileges, DHCP and DNS from govmm, NAT to the host's network), or none; without -net the guest has no network card", func(s string) error {
		w, err := netWord(s)
		if err != nil || w == "" {
			return err
		}
		v.virtio = append(v.virtio, w)
		return nil
	})
	fs.Func("rng", "on: add a virtio-rng entropy device fed by the host's getrandom(2) (off, the default, adds none)", func(s string) error {
		switch s {
		case "on":
			v.virtio = append(v.virtio, "virtio-rng")
		case "off":
		default:
			return fmt.Errorf("-rng %q: give on or off", s)
		}
		return nil
	})
}

// driveWord turns a -drive value into a virtio-blk device word.
func driveWord(s string) (string, error) {
	var keep []string
	for _, p := range strings.Split(s, ",") {
		switch p {
		case "if=virtio", "media=disk":
			continue // what QEMU users write; the only kind govmm has
		}
		if strings.HasPrefix(p, "if=") {
			return "", fmt.Errorf("-drive %s: govmm's disks are virtio (if=virtio)", p)
		}
		keep = append(keep, p)
	}
	if !strings.Contains(","+s, ",file=") {
		return "", fmt.Errorf("-drive %q: give file=PATH", s)
	}
	return "virtio-blk," + strings.Join(keep, ","), nil
}

// netWord turns a -net value into a virtio-net device word ("" for none).
func netWord(s string) (string, error) {
	kind, rest, _ := strings.Cut(s, ",")
	var opts []string
	if rest != "" {
		opts = strings.Split(rest, ",")
	}
	switch kind {
	case "none":
		if rest != "" {
			return "", fmt.Errorf("-net none takes no options")
		}
		return "", nil
	case "tap":
		out := []string{"virtio-net"}
		name := ""
		for _, o := range opts {
			if n, ok := strings.CutPrefix(o, "ifname="); ok {
				name = n
				continue
			}
			out = append(out, o)
		}
		if name == "" {
			return "", fmt.Errorf("-net tap: give the TAP device's name, tap,ifname=NAME")
		}
		return strings.Join(append(out, "tap="+name), ","), nil
	case "user":
		return strings.Join(append([]string{"virtio-net", "user"}, opts...), ","), nil
	}
	return "", fmt.Errorf("-net %q: give tap,ifname=NAME, user[,hostfwd=tcp::HOSTPORT-:GUESTPORT] or none", s)
}
