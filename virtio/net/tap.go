package net

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// TAP device ioctls and flags (<linux/if_tun.h>).
const (
	tunSetOffload   = 0x400454d0 // TUNSETOFFLOAD
	tunSetVnetHdrSz = 0x400454d8 // TUNSETVNETHDRSZ

	tunFCsum = 0x01 // TUN_F_CSUM
	tunFTSO4 = 0x02 // TUN_F_TSO4
	tunFTSO6 = 0x04 // TUN_F_TSO6
)

// TunDevice is the TUN/TAP clone device.
const TunDevice = "/dev/net/tun"

// TAP is a Linux TAP device as a Backend, with IFF_VNET_HDR: frames carry
// virtio_net_hdr, and the kernel does the offloads.
type TAP struct {
	f    *os.File // non-blocking: reads park the goroutine on the poller
	fd   int
	name string
}

// OpenTAP attaches to the TAP device name, creating it when it does not
// exist (which needs CAP_NET_ADMIN; a TAP made beforehand with `ip tuntap
// add NAME mode tap user USER` needs nothing).
func OpenTAP(name string) (*TAP, error) {
	fd, err := unix.Open(TunDevice, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("tap %s: open %s: %w (load the tun module: modprobe tun)", name, TunDevice, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("tap %s: %w: creating a TAP device needs CAP_NET_ADMIN; run govmm as root, or make it first: sudo ip tuntap add %s mode tap user $USER && sudo ip link set %s up", name, err, name, name)
		}
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("tap %s: %w: another process has it open, or it is a TUN device or lacks multi-queue", name, err)
		}
		return nil, fmt.Errorf("tap %s: TUNSETIFF: %w", name, err)
	}
	if err := unix.IoctlSetPointerInt(fd, tunSetVnetHdrSz, HeaderSize); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: TUNSETVNETHDRSZ %d: %w", name, HeaderSize, err)
	}
	return &TAP{f: os.NewFile(uintptr(fd), "tap-"+name), fd: fd, name: name}, nil
}

// Name is the interface's name.
func (t *TAP) Name() string { return t.name }

func (t *TAP) VnetHdr() bool { return true }

// ReadPacket reads one frame with its header.
func (t *TAP) ReadPacket(p []byte) (int, error) { return t.f.Read(p) }

// WritePacket writes one frame with its header, in one writev; a full
// queue drops it.
func (t *TAP) WritePacket(iov [][]byte) error {
	for {
		_, err := unix.Writev(t.fd, iov)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// SetOffloads tells the kernel what the guest takes in received frames:
// partial checksums, TCP segments (TUNSETOFFLOAD).
func (t *TAP) SetOffloads(features uint64) error {
	var flags int
	if features&FeatureGuestCsum != 0 {
		flags |= tunFCsum
		if features&FeatureGuestTSO4 != 0 {
			flags |= tunFTSO4
		}
		if features&FeatureGuestTSO6 != 0 {
			flags |= tunFTSO6
		}
	}
	if err := unix.IoctlSetInt(t.fd, tunSetOffload, flags); err != nil {
		return fmt.Errorf("tap %s: TUNSETOFFLOAD %#x: %w", t.name, flags, err)
	}
	return nil
}

// Close closes the device; a non-persistent TAP govmm created goes away.
func (t *TAP) Close() error { return t.f.Close() }
