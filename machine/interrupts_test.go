package machine

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
)

// fakeIRQVM records the interrupt ioctls.
type fakeIRQVM struct {
	mu      sync.Mutex
	lines   map[uint32]bool
	routes  []kvm.IRQRoute
	irqfds  map[uint32]int // gsi -> fd
	msis    []devices.MSIMessage
	ioevent map[uint64]int // addr -> fd
	flags   map[uint64]kvm.IOEventFDFlags
}

func newFakeIRQVM() *fakeIRQVM {
	return &fakeIRQVM{lines: map[uint32]bool{}, irqfds: map[uint32]int{}, ioevent: map[uint64]int{}, flags: map[uint64]kvm.IOEventFDFlags{}}
}

func (f *fakeIRQVM) SetIRQLine(irq uint32, high bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines[irq] = high
	return nil
}

func (f *fakeIRQVM) SetGSIRouting(r []kvm.IRQRoute) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = append([]kvm.IRQRoute(nil), r...)
	return nil
}

func (f *fakeIRQVM) IRQFD(fd int, gsi uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.irqfds[gsi] = fd
	return nil
}

func (f *fakeIRQVM) RemoveIRQFD(fd int, gsi uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.irqfds[gsi] != fd {
		return errors.New("no such irqfd")
	}
	delete(f.irqfds, gsi)
	return nil
}

func (f *fakeIRQVM) SignalMSI(addr uint64, data uint32) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msis = append(f.msis, devices.MSIMessage{Addr: addr, Data: data})
	return true, nil
}

func (f *fakeIRQVM) IOEventFD(fd int, addr uint64, size uint32, datamatch uint64, flags kvm.IOEventFDFlags) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if flags&kvm.IOEventFDDeassign != 0 {
		if f.ioevent[addr] != fd {
			return errors.New("no such ioeventfd")
		}
		delete(f.ioevent, addr)
		return nil
	}
	f.ioevent[addr] = fd
	f.flags[addr] = flags
	return nil
}

func (f *fakeIRQVM) msiRoutes() map[uint32]devices.MSIMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uint32]devices.MSIMessage{}
	for _, r := range f.routes {
		if r.Kind == kvm.IRQRouteMSI {
			out[r.GSI] = devices.MSIMessage{Addr: r.Addr, Data: r.Data}
		}
	}
	return out
}

var allCaps = irqCaps{routes: 4096, irqfd: true, signalMSI: true, ioeventfd: true}

func TestRoutedVectors(t *testing.T) {
	vm := newFakeIRQVM()
	ir := newInterrupts(vm, allCaps)
	a, err := ir.NewMSIVector()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ir.NewMSIVector()
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := a.(*routedVector), b.(*routedVector)
	if ra.gsi != kvm.IOAPICPins || rb.gsi != kvm.IOAPICPins+1 {
		t.Errorf("GSIs of the first two vectors = %d, %d, want 24, 25 (after the IOAPIC's pins)", ra.gsi, rb.gsi)
	}
	if vm.irqfds[ra.gsi] != ra.fd {
		t.Errorf("irqfd for GSI %d not bound", ra.gsi)
	}
	ma := devices.MSIMessage{Addr: 0xFEE0_0000, Data: 0x41}
	mb := devices.MSIMessage{Addr: 0xFEE0_1000, Data: 0x42}
	if err := a.SetMessage(ma); err != nil {
		t.Fatal(err)
	}
	if err := b.SetMessage(mb); err != nil {
		t.Fatal(err)
	}
	got := vm.msiRoutes()
	if len(got) != 2 || got[ra.gsi] != ma || got[rb.gsi] != mb {
		t.Errorf("MSI routes = %v, want GSI %d: %v and GSI %d: %v", got, ra.gsi, ma, rb.gsi, mb)
	}
	if n := len(vm.routes) - len(got); n != len(kvm.DefaultIRQRoutes()) {
		t.Errorf("the table holds %d irqchip routes, want KVM's %d defaults kept", n, len(kvm.DefaultIRQRoutes()))
	}
	// Trigger writes the eventfd KVM watches.
	if err := a.Trigger(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Read(ra.fd, buf); err != nil || n != 8 || buf[0] != 1 {
		t.Errorf("eventfd after Trigger: read %d bytes %v, %v; want the count 1", n, buf, err)
	}
	// Close unbinds and unroutes; the GSI is reused.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := vm.irqfds[ra.gsi]; ok {
		t.Errorf("irqfd of GSI %d still bound after Close", ra.gsi)
	}
	if got := vm.msiRoutes(); len(got) != 1 {
		t.Errorf("MSI routes after closing one of two = %v, want one", got)
	}
	c, err := ir.NewMSIVector()
	if err != nil {
		t.Fatal(err)
	}
	if c.(*routedVector).gsi != ra.gsi {
		t.Errorf("a new vector got GSI %d, want the freed %d", c.(*routedVector).gsi, ra.gsi)
	}
}

func TestMSIFallbacks(t *testing.T) {
	vm := newFakeIRQVM()
	ir := newInterrupts(vm, irqCaps{signalMSI: true})
	v, err := ir.NewMSIVector()
	if err != nil {
		t.Fatal(err)
	}
	m := devices.MSIMessage{Addr: 0xFEE0_0000, Data: 0x50}
	if err := v.SetMessage(m); err != nil {
		t.Fatal(err)
	}
	if err := v.Trigger(); err != nil {
		t.Fatal(err)
	}
	if len(vm.msis) != 1 || vm.msis[0] != m || len(vm.routes) != 0 {
		t.Errorf("with only KVM_SIGNAL_MSI: sent %v, routes %v; want one message and no routes", vm.msis, vm.routes)
	}
	_, err = newInterrupts(vm, irqCaps{}).NewMSIVector()
	if err == nil || !strings.Contains(err.Error(), "KVM_CAP_SIGNAL_MSI") || !strings.Contains(err.Error(), "KVM_CAP_IRQ_ROUTING") {
		t.Errorf("NewMSIVector without any MSI capability = %v, want an error naming what is missing", err)
	}
	// Routes but too few GSIs: the error says what to do.
	small := newInterrupts(vm, irqCaps{routes: kvm.IOAPICPins + 1, irqfd: true})
	if _, err := small.NewMSIVector(); err != nil {
		t.Fatal(err)
	}
	if _, err := small.NewMSIVector(); err == nil || !strings.Contains(err.Error(), "fewer MSI-X vectors") {
		t.Errorf("NewMSIVector past KVM's routes = %v, want an error", err)
	}
}

func TestLine(t *testing.T) {
	vm := newFakeIRQVM()
	ir := newInterrupts(vm, allCaps)
	if err := ir.Line(17).SetLevel(true); err != nil || !vm.lines[17] {
		t.Errorf("Line(17).SetLevel(true) = %v, level %v", err, vm.lines[17])
	}
}

func TestDoorbell(t *testing.T) {
	vm := newFakeIRQVM()
	if _, err := newInterrupts(vm, irqCaps{}).Doorbell(devices.MMIO, 0x1000, 4, func() {}); !errors.Is(err, devices.ErrNoDoorbells) {
		t.Fatalf("Doorbell without KVM_CAP_IOEVENTFD = %v, want ErrNoDoorbells", err)
	}
	ir := newInterrupts(vm, allCaps)
	rang := make(chan struct{}, 4)
	bell, err := ir.Doorbell(devices.PortIO, 0xC010, 4, func() { rang <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	fd := vm.ioevent[0xC010]
	if vm.flags[0xC010] != kvm.IOEventFDPIO {
		t.Errorf("ioeventfd flags for a port = %v, want IOEventFDPIO", vm.flags[0xC010])
	}
	// What KVM does on a matching guest write.
	if _, err := unix.Write(fd, eventfdOne); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rang:
	case <-time.After(10 * time.Second):
		t.Fatal("ring not called 10 s after the eventfd was signalled")
	}
	if err := bell.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if _, ok := vm.ioevent[0xC010]; ok {
		t.Errorf("ioeventfd still assigned after Close")
	}
}
