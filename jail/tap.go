package jail

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// moveTAP moves the TAP device name into the network namespace of
// process pid, and returns a function that moves it back to the jailer's
// namespace. It holds the jail's namespace open until then: a TAP device
// left in a namespace that dies is destroyed with it.
func moveTAP(name string, pid int) (func() error, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("jail: -tap %s: %w (make it first: ip tuntap add %s mode tap)", name, err, name)
	}
	if _, ok := link.(*netlink.Tuntap); !ok {
		return nil, fmt.Errorf("jail: -tap %s is a %s device, not a TAP device", name, link.Type())
	}
	host, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("jail: -tap: the jailer's network namespace: %w", err)
	}
	jailNS, err := netns.GetFromPid(pid)
	if err != nil {
		host.Close()
		return nil, fmt.Errorf("jail: -tap: the jail's network namespace: %w", err)
	}
	back := func() error {
		defer host.Close()
		defer jailNS.Close()
		h, err := netlink.NewHandleAt(jailNS)
		if err != nil {
			return fmt.Errorf("jail: moving TAP %s back: %w", name, err)
		}
		defer h.Close()
		l, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("jail: moving TAP %s back: %w", name, err)
		}
		if err := h.LinkSetNsFd(l, int(host)); err != nil {
			return fmt.Errorf("jail: moving TAP %s back: %w", name, err)
		}
		return nil
	}
	if err := netlink.LinkSetNsPid(link, pid); err != nil {
		return nil, errors.Join(fmt.Errorf("jail: moving TAP %s into the jail: %w", name, err), jailNS.Close(), host.Close())
	}
	// Moving a link takes it down, and the VMM, with no capabilities,
	// cannot bring it up: a TAP that is down refuses the frames it writes.
	if err := setUp(jailNS, name); err != nil {
		return nil, errors.Join(err, back())
	}
	return back, nil
}

// setUp brings link name up in namespace ns.
func setUp(ns netns.NsHandle, name string) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("jail: -tap %s: %w", name, err)
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err == nil {
		err = h.LinkSetUp(l)
	}
	if err != nil {
		return fmt.Errorf("jail: -tap %s: bringing it up in the jail: %w", name, err)
	}
	return nil
}
