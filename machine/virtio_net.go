package machine

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/govmm/govmm/virtio"
	vnet "github.com/govmm/govmm/virtio/net"
)

// tunDevice is the TUN/TAP clone device.
const tunDevice = vnet.TunDevice

// netSpec is a virtio-net device's backend.
type netSpec struct {
	tap     string   // TAP device name; "" with user
	user    bool     // user-mode networking
	hostfwd []string // user: tcp::HOSTPORT-:GUESTPORT rules
	mac     net.HardwareAddr
	// macGiven says mac= was given: a restore keeps it (a clone's own
	// address) instead of the saved guest's.
	macGiven bool
}

func (n netSpec) String() string {
	if n.user {
		s := "user-mode network, MAC " + n.mac.String()
		if len(n.hostfwd) > 0 {
			s += ", hostfwd " + strings.Join(n.hostfwd, " ")
		}
		return s
	}
	return "TAP " + n.tap + ", MAC " + n.mac.String()
}

// defaultMAC is QEMU's first guest address, in the locally administered
// range Red Hat/QEMU use (52:54:00).
var defaultMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

// parseNet reads a virtio-net word's options.
func parseNet(opts []string) (netSpec, error) {
	n := netSpec{mac: defaultMAC}
	for _, p := range opts {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "tap":
			if v == "" || len(v) > 15 || strings.ContainsAny(v, "/ ") {
				return n, fmt.Errorf("tap=%q: give a network interface name of 1 to 15 bytes", v)
			}
			n.tap = v
		case "user":
			n.user = true
		case "hostfwd":
			if _, _, err := parseHostFwd(v); err != nil {
				return n, err
			}
			n.hostfwd = append(n.hostfwd, v)
		case "mac":
			mac, err := net.ParseMAC(v)
			if err != nil || len(mac) != 6 || mac[0]&1 != 0 {
				return n, fmt.Errorf("mac=%s: give a unicast Ethernet address like 52:54:00:12:34:56", v)
			}
			n.mac, n.macGiven = mac, true
		default:
			return n, fmt.Errorf("%s option %q: give tap=NAME or user, hostfwd=tcp::HOSTPORT-:GUESTPORT (user), mac=ADDRESS", virtioNet, p)
		}
	}
	switch {
	case n.user && n.tap != "":
		return n, errors.New("virtio-net: give tap=NAME or user, not both")
	case !n.user && n.tap == "":
		return n, errors.New("virtio-net: give a backend: tap=NAME or user")
	case !n.user && len(n.hostfwd) > 0:
		return n, errors.New("virtio-net: hostfwd= is for user-mode networking (user)")
	}
	return n, nil
}

// parseHostFwd reads tcp::HOSTPORT-:GUESTPORT (or with addresses,
// tcp:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT, as QEMU writes it).
func parseHostFwd(s string) (host, guest string, err error) {
	bad := fmt.Errorf("hostfwd=%s: give tcp::HOSTPORT-:GUESTPORT, like tcp::2222-:22 (or udp:...)", s)
	proto, rest, ok := strings.Cut(s, ":")
	if !ok || (proto != "tcp" && proto != "udp") {
		return "", "", bad
	}
	h, g, ok := strings.Cut(rest, "-")
	if !ok {
		return "", "", bad
	}
	hostAddr, hostPort, err1 := net.SplitHostPort(h)
	guestAddr, guestPort, err2 := net.SplitHostPort(g)
	if err1 != nil || err2 != nil || hostPort == "" || guestPort == "" {
		return "", "", bad
	}
	return net.JoinHostPort(hostAddr, hostPort), net.JoinHostPort(guestAddr, guestPort), nil
}

// newNet builds a virtio-net device on its backend.
func (m *Machine) newNet(n netSpec) (virtio.Device, func() error, error) {
	var be vnet.Backend
	if n.user {
		var log io.Writer // the netstack's warnings only with -v
		if m.cfg.Verbose {
			log = m.log
		}
		u, err := newUserNet(n, log)
		if err != nil {
			return nil, nil, err
		}
		be = u
	} else {
		t, err := vnet.OpenTAP(n.tap)
		if err != nil {
			return nil, nil, err
		}
		be = t
	}
	d, err := vnet.New(be, n.mac)
	if err != nil {
		return nil, nil, errors.Join(err, be.Close())
	}
	return d, be.Close, nil
}
