package machine

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
)

// irqVM is what the interrupt plumbing needs of the VM; *kvm.VM has it,
// and a unit test a fake.
type irqVM interface {
	SetIRQLine(irq uint32, high bool) error
	SetGSIRouting(routes []kvm.IRQRoute) error
	IRQFD(fd int, gsi uint32) error
	RemoveIRQFD(fd int, gsi uint32) error
	SignalMSI(addr uint64, data uint32) (bool, error)
	IOEventFD(fd int, addr uint64, size uint32, datamatch uint64, flags kvm.IOEventFDFlags) error
}

// irqCaps is what the host's KVM offers for interrupt delivery.
type irqCaps struct {
	routes    int  // KVM_CAP_IRQ_ROUTING: the most routing entries, 0 without
	irqfd     bool // KVM_CAP_IRQFD
	signalMSI bool // KVM_CAP_SIGNAL_MSI
	ioeventfd bool // KVM_CAP_IOEVENTFD
}

// probeIRQCaps asks KVM which delivery mechanisms it has.
func probeIRQCaps(sys *kvm.System) (irqCaps, error) {
	var c irqCaps
	var errs []error
	ask := func(cp kvm.Cap) int {
		n, err := sys.CheckExtension(cp)
		errs = append(errs, err)
		return n
	}
	c.routes = ask(kvm.CapIRQRouting)
	c.irqfd = ask(kvm.CapIRQFD) > 0
	c.signalMSI = ask(kvm.CapSignalMSI) > 0
	c.ioeventfd = ask(kvm.CapIOEventFD) > 0
	return c, errors.Join(errs...)
}

// msiByRoute says whether MSI vectors get a GSI route and an irqfd, the
// path that lets any thread interrupt the guest with one eventfd write.
func (c irqCaps) msiByRoute() bool { return c.routes > kvm.IOAPICPins && c.irqfd }

func (c irqCaps) String() string {
	msi := "none (KVM has neither KVM_CAP_IRQ_ROUTING with KVM_CAP_IRQFD nor KVM_CAP_SIGNAL_MSI)"
	switch {
	case c.msiByRoute():
		msi = fmt.Sprintf("GSI routes with irqfds (KVM takes %d routes)", c.routes)
	case c.signalMSI:
		msi = "KVM_SIGNAL_MSI per message"
	}
	bells := "ioeventfd"
	if !c.ioeventfd {
		bells = "none (KVM_CAP_IOEVENTFD missing: doorbell writes exit)"
	}
	return "MSI delivery: " + msi + "; doorbells: " + bells
}

// interrupts implements devices.Interrupts on KVM's in-kernel irqchip.
type interrupts struct {
	vm   irqVM
	caps irqCaps

	mu      sync.Mutex
	msi     map[uint32]devices.MSIMessage // the MSI routes, by GSI
	nextGSI uint32                        // the lowest GSI never handed out
	freed   []uint32                      // GSIs handed back

	// rings counts doorbell rings that came through an ioeventfd: guest
	// writes govmm heard of without a vCPU exit.
	rings atomic.Uint64
}

func newInterrupts(vm irqVM, caps irqCaps) *interrupts {
	return &interrupts{vm: vm, caps: caps, msi: map[uint32]devices.MSIMessage{}, nextGSI: kvm.IOAPICPins}
}

// Line drives GSI gsi with KVM_IRQ_LINE.
func (ir *interrupts) Line(gsi uint32) devices.IRQLine {
	return devices.IRQFunc(func(high bool) error { return ir.vm.SetIRQLine(gsi, high) })
}

// NewMSIVector returns a vector on a GSI route with an irqfd where KVM has
// both, else one that sends each message with KVM_SIGNAL_MSI.
func (ir *interrupts) NewMSIVector() (devices.MSIVector, error) {
	switch {
	case ir.caps.msiByRoute():
		return ir.newRoutedVector()
	case ir.caps.signalMSI:
		return &signalVector{vm: ir.vm}, nil
	}
	return nil, errors.New("MSI interrupts need KVM_CAP_IRQ_ROUTING with KVM_CAP_IRQFD, or KVM_CAP_SIGNAL_MSI, and this host's KVM has neither: use a newer host kernel, or a device without MSI-X")
}

func (ir *interrupts) allocGSI() (uint32, error) {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	if n := len(ir.freed); n > 0 {
		gsi := ir.freed[n-1]
		ir.freed = ir.freed[:n-1]
		return gsi, nil
	}
	if int(ir.nextGSI) >= ir.caps.routes {
		return 0, fmt.Errorf("all %d GSIs KVM routes are in use: give the VM fewer MSI-X vectors", ir.caps.routes)
	}
	ir.nextGSI++
	return ir.nextGSI - 1, nil
}

// setRoute points gsi at msg (or, with ok false, removes its route) and
// hands KVM the whole table: KVM_SET_GSI_ROUTING replaces it.
func (ir *interrupts) setRoute(gsi uint32, msg devices.MSIMessage, ok bool) error {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	if ok {
		ir.msi[gsi] = msg
	} else {
		delete(ir.msi, gsi)
	}
	routes := kvm.DefaultIRQRoutes()
	gsis := make([]uint32, 0, len(ir.msi))
	for g := range ir.msi {
		gsis = append(gsis, g)
	}
	sort.Slice(gsis, func(i, j int) bool { return gsis[i] < gsis[j] })
	for _, g := range gsis {
		m := ir.msi[g]
		routes = append(routes, kvm.IRQRoute{GSI: g, Kind: kvm.IRQRouteMSI, Addr: m.Addr, Data: m.Data})
	}
	return ir.vm.SetGSIRouting(routes)
}

// routedVector is an MSI vector on its own GSI, raised through an irqfd.
type routedVector struct {
	ir  *interrupts
	gsi uint32
	efd *os.File // the eventfd KVM watches
	fd  int      // its number (efd.Fd would make it blocking)
}

func (ir *interrupts) newRoutedVector() (*routedVector, error) {
	gsi, err := ir.allocGSI()
	if err != nil {
		return nil, err
	}
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		ir.freeGSI(gsi)
		return nil, fmt.Errorf("eventfd for MSI vector on GSI %d: %w", gsi, err)
	}
	v := &routedVector{ir: ir, gsi: gsi, fd: fd, efd: os.NewFile(uintptr(fd), fmt.Sprintf("irqfd-gsi-%d", gsi))}
	if err := ir.vm.IRQFD(fd, gsi); err != nil {
		ir.freeGSI(gsi)
		return nil, errors.Join(err, v.efd.Close())
	}
	return v, nil
}

func (ir *interrupts) freeGSI(gsi uint32) {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	ir.freed = append(ir.freed, gsi)
}

// SetMessage routes the vector's GSI to m.
func (v *routedVector) SetMessage(m devices.MSIMessage) error {
	return v.ir.setRoute(v.gsi, m, true)
}

// eventfdOne is the 8-byte counter increment an eventfd write adds.
var eventfdOne = []byte{1, 0, 0, 0, 0, 0, 0, 0}

// Trigger signals the irqfd: KVM sends the routed message.
func (v *routedVector) Trigger() error {
	if _, err := v.efd.Write(eventfdOne); err != nil {
		return fmt.Errorf("signal irqfd of GSI %d: %w", v.gsi, err)
	}
	return nil
}

// Close unbinds the irqfd, removes the route and frees the GSI.
func (v *routedVector) Close() error {
	err := errors.Join(
		v.ir.vm.RemoveIRQFD(v.fd, v.gsi),
		v.ir.setRoute(v.gsi, devices.MSIMessage{}, false),
		v.efd.Close())
	v.ir.freeGSI(v.gsi)
	return err
}

// signalVector sends its message with KVM_SIGNAL_MSI each time.
type signalVector struct {
	vm  irqVM
	mu  sync.Mutex
	msg devices.MSIMessage
}

func (v *signalVector) SetMessage(m devices.MSIMessage) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.msg = m
	return nil
}

func (v *signalVector) Trigger() error {
	v.mu.Lock()
	m := v.msg
	v.mu.Unlock()
	_, err := v.vm.SignalMSI(m.Addr, m.Data) // a message the guest blocked is not an error
	return err
}

func (v *signalVector) Close() error { return nil }

// Doorbell registers an ioeventfd for size-byte writes at addr and calls
// ring from a goroutine that waits on it.
func (ir *interrupts) Doorbell(space devices.Space, addr uint64, size int, ring func()) (devices.Doorbell, error) {
	if !ir.caps.ioeventfd {
		return nil, devices.ErrNoDoorbells
	}
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd for the doorbell at %v %#x: %w", space, addr, err)
	}
	var flags kvm.IOEventFDFlags
	if space == devices.PortIO {
		flags = kvm.IOEventFDPIO
	}
	// A non-blocking fd given to os.NewFile is waited on by the runtime's
	// poller: Read parks the goroutine, not a thread, and Close wakes it.
	b := &doorbell{ir: ir, fd: fd, f: os.NewFile(uintptr(fd), fmt.Sprintf("ioeventfd-%v-%#x", space, addr)), addr: addr, size: uint32(size), flags: flags, done: make(chan struct{})}
	if err := ir.vm.IOEventFD(fd, addr, b.size, 0, flags); err != nil {
		return nil, errors.Join(err, b.f.Close())
	}
	go b.wait(ring)
	return b, nil
}

type doorbell struct {
	ir    *interrupts
	f     *os.File
	fd    int // f's number (f.Fd would make it blocking)
	addr  uint64
	size  uint32
	flags kvm.IOEventFDFlags
	done  chan struct{}
}

// wait calls ring after each read of the eventfd (each read takes every
// write since the last), until the file is closed.
func (b *doorbell) wait(ring func()) {
	defer close(b.done)
	buf := make([]byte, 8)
	for {
		if _, err := b.f.Read(buf); err != nil {
			return
		}
		b.ir.rings.Add(1)
		ring()
	}
}

// Close removes the ioeventfd and stops the goroutine.
func (b *doorbell) Close() error {
	err := b.ir.vm.IOEventFD(b.fd, b.addr, b.size, 0, b.flags|kvm.IOEventFDDeassign)
	err = errors.Join(err, b.f.Close())
	<-b.done
	return err
}
