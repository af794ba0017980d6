package machine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/blk"
	vnet "github.com/govmm/govmm/virtio/net"
	virtiopci "github.com/govmm/govmm/virtio/pci"
	"github.com/govmm/govmm/virtio/rng"
)

// Virtio devices are named in Config.Devices as QEMU names them, a kind
// and comma-separated options (",," is a comma inside a value):
//
//	virtio-blk,file=PATH[,readonly=on|off][,cache=writeback|writethrough|unsafe][,serial=ID]
//	virtio-rng
//	virtio-net,tap=NAME[,mac=52:54:00:12:34:56]
//	virtio-net,user[,hostfwd=tcp::2222-:22]...[,mac=...]
//
// govmm's -drive, -net and -rng flags write these.
const (
	virtioBlk = "virtio-blk"
	virtioRNG = "virtio-rng"
	virtioNet = "virtio-net"
)

// virtioSpec is a parsed virtio device word.
type virtioSpec struct {
	kind string
	blk  blk.Options
	net  netSpec
}

// isVirtio says whether a device word names a virtio device.
func isVirtio(s string) bool {
	switch splitOptions(s)[0] {
	case virtioBlk, virtioNet, virtioRNG:
		return true
	}
	return false
}

// splitOptions splits a QEMU-style option list at single commas.
func splitOptions(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			if i+1 < len(s) && s[i+1] == ',' {
				cur.WriteByte(',')
				i++
				continue
			}
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(out, cur.String())
}

// onOff reads an on/off option.
func onOff(key, v string) (bool, error) {
	switch v {
	case "on", "true", "yes":
		return true, nil
	case "off", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("%s=%s: give on or off", key, v)
}

// parseVirtio reads a virtio device word.
func parseVirtio(s string) (virtioSpec, error) {
	parts := splitOptions(s)
	sp := virtioSpec{kind: parts[0]}
	switch sp.kind {
	case virtioRNG:
		if len(parts) > 1 {
			return sp, fmt.Errorf("%s takes no options, got %q", virtioRNG, strings.Join(parts[1:], ","))
		}
		return sp, nil
	case virtioNet:
		var err error
		sp.net, err = parseNet(parts[1:])
		return sp, err
	case virtioBlk:
	default:
		return sp, fmt.Errorf("device %q: the virtio devices are %s, %s and %s", parts[0], virtioBlk, virtioNet, virtioRNG)
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		var err error
		switch k {
		case "file":
			sp.blk.Path = v
		case "readonly":
			sp.blk.ReadOnly, err = onOff(k, v)
		case "cache":
			sp.blk.Cache, err = blk.ParseCache(v)
		case "serial":
			if len(v) > blk.IDBytes {
				err = fmt.Errorf("serial=%s: at most %d bytes", v, blk.IDBytes)
			}
			sp.blk.ID = v
		case "format":
			if v != "raw" {
				err = fmt.Errorf("format=%s: govmm reads raw images only", v)
			}
		default:
			err = fmt.Errorf("%s option %q: give file=PATH, readonly=on|off, cache=writeback|writethrough|unsafe, serial=ID or format=raw", virtioBlk, p)
		}
		if err != nil {
			return sp, err
		}
	}
	if sp.blk.Path == "" {
		return sp, fmt.Errorf("%s needs file=PATH (a raw disk image or a block device)", virtioBlk)
	}
	if sp.blk.Cache == 0 {
		sp.blk.Cache = blk.CacheWriteback
	}
	return sp, nil
}

// virtioDev is one virtio device on the bus.
type virtioDev struct {
	spec  virtioSpec
	index int // in Config.Devices
	tr    *virtiopci.Transport
	slot  int
	close func() error // the backend's (the disk file, the TAP)
	blk   *blk.Device
	net   *vnet.Device
}

// addVirtio builds the device a Config.Devices word names and puts it on
// the bus.
func (m *Machine) addVirtio(p *pciMachine, word string, index int) error {
	sp, err := parseVirtio(word)
	if err != nil {
		return err
	}
	vd := &virtioDev{spec: sp, index: index, close: func() error { return nil }}
	var dev virtio.Device
	switch sp.kind {
	case virtioRNG:
		dev = rng.New()
	case virtioBlk:
		b, err := blk.Open(sp.blk)
		if err != nil {
			return err
		}
		dev, vd.blk, vd.close = b, b, b.Close
	case virtioNet:
		nd, closeNet, err := m.newNet(sp.net)
		if err != nil {
			return err
		}
		dev, vd.close = nd, closeNet
		if vd.net, _ = nd.(*vnet.Device); vd.net != nil {
			vd.close = func() error { vd.net.Close(); return closeNet() }
		}
	}
	name := fmt.Sprintf("%s %d", sp.kind, index)
	vd.tr, err = virtiopci.New(virtiopci.Config{Device: dev, Mem: m.mem, Name: name, Log: m.log})
	if err != nil {
		return errors.Join(err, vd.close())
	}
	if vd.slot, err = p.bus.Add(vd.tr.Function()); err != nil {
		return errors.Join(fmt.Errorf("%s: %w", name, err), vd.close())
	}
	p.virtio = append(p.virtio, vd)
	m.addVirtioState(vd) // virtio_state.go
	if m.cfg.Verbose {
		fmt.Fprintf(m.log, "govmm: pci %s: %s (%04x:%04x), BAR%d %#x%s\n", pci.SlotName(vd.slot), name,
			virtiopci.VendorID, vd.tr.Function().Config().DeviceID, virtiopci.BAR, vd.tr.Function().BARAddress(virtiopci.BAR), vd.describe())
	}
	return nil
}

// describe is the device's backend, for -v.
func (vd *virtioDev) describe() string {
	switch vd.spec.kind {
	case virtioBlk:
		o := vd.spec.blk
		ro := ""
		if o.ReadOnly {
			ro = ", read-only"
		}
		return fmt.Sprintf(", %s (%d sectors%s, cache=%v)", o.Path, vd.blk.Sectors(), ro, o.Cache)
	case virtioNet:
		return ", " + vd.spec.net.String()
	}
	return ""
}

// closeVirtio stops the devices and releases their backends.
func (p *pciMachine) closeVirtio() error {
	var errs []error
	for _, vd := range p.virtio {
		vd.tr.Close()
		errs = append(errs, vd.close())
	}
	return errors.Join(errs...)
}

// virtioReport is the virtio devices' part of the verbose report.
func (p *pciMachine) virtioReport() string {
	var b strings.Builder
	for _, vd := range p.virtio {
		fmt.Fprintf(&b, "; %s: status %#x, %d rule(s) broken, %d interrupt(s) failed", vd.spec.kind, vd.tr.Status(), vd.tr.Broken(), vd.tr.IRQErrors())
		if vd.blk != nil {
			fmt.Fprintf(&b, ", %d request(s), %d with errors", vd.blk.Requests.Load(), vd.blk.Errors.Load())
		}
	}
	return b.String()
}

// VirtioTransports are the VM's virtio devices, in Config.Devices order.
func (m *Machine) VirtioTransports() []*virtiopci.Transport {
	if m.pci == nil {
		return nil
	}
	var out []*virtiopci.Transport
	for _, vd := range m.pci.virtio {
		out = append(out, vd.tr)
	}
	return out
}

// DeviceAccess is what the devices in a device list open when the machine
// is built, for a sandbox set up before then (Landlock).
type DeviceAccess struct {
	ReadWrite []string // disk images, /dev/net/tun
	Read      []string // read-only disk images
	// Network says a device makes host sockets of its own (user-mode
	// networking), so TCP must not be confined.
	Network bool
}

// DeviceAccessOf lists what devs open; words that do not parse are left
// out (machine.New refuses them).
func DeviceAccessOf(devs []Device) DeviceAccess {
	var a DeviceAccess
	for _, d := range devs {
		if !isVirtio(string(d)) {
			continue
		}
		sp, err := parseVirtio(string(d))
		if err != nil {
			continue
		}
		switch {
		case sp.kind == virtioBlk && sp.blk.ReadOnly:
			a.Read = append(a.Read, sp.blk.Path)
		case sp.kind == virtioBlk:
			a.ReadWrite = append(a.ReadWrite, sp.blk.Path)
		case sp.kind == virtioNet && sp.net.user:
			a.Network = true
			a.Read = append(a.Read, "/etc/resolv.conf") // the host's name server, for the guest's DNS
		case sp.kind == virtioNet:
			a.ReadWrite = append(a.ReadWrite, tunDevice)
		}
	}
	return a
}
