package machine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// Machine is one VM: its KVM objects, RAM, devices and vCPUs.
type Machine struct {
	cfg       Config
	log       io.Writer
	host      kvm.HostKind
	hostModel string // the host processor's name, for the guest's CPUID
	sys       *kvm.System
	vm        *kvm.VM
	mem       *memory.Memory
	plat      *platform
	acpiPM    *devices.ACPIPM // the ACPI registers: power button, S5, reset
	clock     *startup        // New's steps, timed (startup.go)
	hw        []*kvm.VCPU
	vcpus     []*vcpu.VCPU
	Loaded    *Loaded
	pci       *pciMachine  // PCI bus 0 and the interrupt plumbing (pci.go)
	pit       *devices.PIT // the userspace PIT, with -pit user (pit.go)

	endOnce sync.Once
	end     ending // what the guest or the VMM asked for first

	mob mobility // pausing, state, restore, dirty logs (pause.go, state.go, dirty.go)
}

// ending is how the VM was asked to stop from a device.
type ending struct {
	set       bool
	reason    vcpu.StopReason
	status    int
	debugExit bool // status came from the debug-exit device
}

// New builds a VM from c: opens KVM and checks it has what govmm needs
// (kvm.CheckCaps: c.CPUs, and the PIT unless c.PIT is PITUser), maps RAM,
// creates the devices, loads the kernel and sets up the vCPUs. Close
// releases everything.
func New(c Config) (m *Machine, err error) {
	clock := startClock()
	if err := c.validate(); err != nil {
		return nil, errors.Join(err, c.closeRestore())
	}
	if c.Start.IsZero() {
		c.Start = time.Now()
	}
	m = &Machine{cfg: c, log: c.Log}
	if m.log == nil {
		m.log = io.Discard
	}
	// Reading /proc/cpuinfo takes 0.1-0.2 ms: on another thread while
	// KVM is opened, until the kernel loader needs the host's kind.
	waitHost := clock.alongside("host", func() error {
		host := kvm.ReadHost(os.DirFS("/"))
		m.host, m.hostModel = host.Kind, host.Model
		return nil
	})
	waitCPUID := func() error { return nil }
	waitVCPUs := func() error { return nil }
	defer func() {
		if err != nil {
			_ = waitHost()
			_ = waitCPUID() // its ioctl is done before KVM's fd closes
			_ = waitVCPUs() // the vCPUs it made are in m.hw, closed with the VM
			err = errors.Join(err, m.Close())
			m = nil
		}
	}()
	m.mem = c.restoredRAM() // nil when booting
	if m.sys, err = kvm.Open(c.KVMPath); err != nil {
		return m, err
	}
	// KVM_GET_SUPPORTED_CPUID takes 0.4-0.6 ms on a PVM host (measured
	// 2026-11-29): it runs on another thread while the VM and RAM are set
	// up, until the vCPUs' CPUID needs it.
	var supported []kvm.CPUIDEntry
	waitCPUID = clock.alongside("cpuid", func() (err error) {
		supported, err = m.sys.SupportedCPUID()
		return err
	})
	var limits kvm.VCPULimits
	if limits, err = kvm.CheckCaps(m.sys, kvm.Needs{VCPUs: c.CPUs, PIT: c.PIT != PITUser}); err != nil {
		return m, err
	}
	if c.Verbose && c.CPUs > limits.Recommended {
		fmt.Fprintf(m.log, "govmm: %d vCPUs on a host whose KVM recommends at most %d (KVM_CAP_NR_VCPUS, its CPUs): they will share them\n", c.CPUs, limits.Recommended)
	}
	if m.vm, err = m.sys.CreateVM(); err != nil {
		return m, err
	}
	if m.mem == nil {
		if m.mem, err = memory.New(c.MemSize); err != nil {
			return m, err
		}
	}
	clock.mark("mmap")
	// RAM goes in before the interrupt controllers: KVM then adds it in
	// about 0.3 ms; after KVM_CREATE_IRQCHIP the same
	// KVM_SET_USER_MEMORY_REGION waits 4-7 ms on a PVM host (measured
	// 2026-11-29: its SRCU grace period, kvm_swap_active_memslots).
	if err := m.addRAM(); err != nil {
		return m, err
	}
	clock.mark("ram")
	if err := m.setupVM(); err != nil {
		return m, err
	}
	clock.mark("kvm")
	_ = waitHost()
	// The vCPUs need only the VM, its interrupt controller and the
	// supported CPUID; KVM_CREATE_VCPU and KVM_SET_CPUID2 take ~0.1 and
	// ~0.2 ms a vCPU on a PVM host (measured 2026-11-30): they run on
	// other threads while the devices, ACPI tables and kernel are set up.
	var made []madeVCPU
	waitMade := clock.alongside("vcpus", func() error {
		if err := waitCPUID(); err != nil {
			return err
		}
		return m.makeVCPUs(supported, &made)
	})
	waitVCPUs = func() error {
		err := waitMade()
		m.hw = m.hw[:0]
		for _, v := range made {
			m.hw = append(m.hw, v.hw)
		}
		return err
	}
	if m.plat, err = newPlatform(m, m.mem, c.SerialOut, m.log, c.Start, !c.NoDebugDevices, m.powerOff, m.reset); err != nil {
		return m, err
	}
	if err := m.setupACPI(); err != nil {
		return m, err
	}
	if err := m.setupPCI(); err != nil {
		return m, err
	}
	if err := m.setupPIT(); err != nil {
		return m, err
	}
	// The kernel, initrd and kernel cache may be files mapped (boot.MapFile):
	// one truncated meanwhile is an error here, not a crash.
	if err := boot.Guard("loading the kernel", func() (err error) {
		m.Loaded, err = loadKernel(m.mem, &m.cfg, m.host, m.log)
		return err
	}); err != nil {
		return m, err
	}
	if err := waitVCPUs(); err != nil {
		return m, err
	}
	if err := m.createVCPUs(made); err != nil {
		return m, err
	}
	clock.mark("setup")
	if err := m.setupMobility(); err != nil {
		return m, err
	}
	clock.mark("state")
	m.clock = clock
	return m, nil
}

// addRAM gives the VM its RAM regions.
func (m *Machine) addRAM() error {
	for i, r := range m.mem.Regions() {
		if err := m.vm.SetUserMemoryRegion(uint32(i), 0, uint64(r.Start), r.Host); err != nil {
			return fmt.Errorf("adding RAM [%v, %v) to the VM: %w", r.Start, r.End(), err)
		}
	}
	return nil
}

// setupVM gives KVM the addresses it needs and creates the in-kernel
// interrupt controllers (PIC, IOAPIC, LAPICs) and the PIT.
func (m *Machine) setupVM() error {
	if err := m.vm.SetTSSAddr(uint64(boot.KVMTSSAddr)); err != nil {
		return err
	}
	if err := m.vm.SetIdentityMapAddr(uint64(boot.KVMIdentityMapAddr)); err != nil {
		return err
	}
	if err := m.vm.CreateIRQChip(); err != nil {
		return err
	}
	if m.cfg.PIT == PITUser {
		return nil // govmm's PIT (pit.go) takes ports 0x40-0x43 and 0x61
	}
	return m.vm.CreatePIT2()
}

// line implements irqLines with KVM_IRQ_LINE on the in-kernel irqchip.
func (m *Machine) line(irq uint32) devices.IRQLine {
	return devices.IRQFunc(func(high bool) error { return m.vm.SetIRQLine(irq, high) })
}

// hiddenCPUID is the CPUID features govmm asks KVM to hide: those PVM's
// emulator fails on, with -hide-cpuid on, or auto on a PVM host; else none.
func (m *Machine) hiddenCPUID() []vcpu.CPUIDBit {
	if m.cfg.Hide == HideOn || m.cfg.Hide != HideOff && m.host == kvm.HostPVM {
		return vcpu.PVMHidden
	}
	return nil
}

// madeVCPU is a vCPU KVM has made, with the CPUID KVM gives its guest.
type madeVCPU struct {
	hw    *kvm.VCPU
	cpuid []kvm.CPUIDEntry // as KVM_GET_CPUID2 reads it back
}

// makeVCPUs creates the VM's vCPUs in KVM, in order, then sets their
// CPUID on up to GOMAXPROCS threads at once (KVM_SET_CPUID2 holds only
// its vCPU's lock). made holds every vCPU created, even when it fails,
// for the caller to close. It touches nothing but KVM: New runs it
// alongside the rest of the setup.
func (m *Machine) makeVCPUs(supported []kvm.CPUIDEntry, made *[]madeVCPU) error {
	hide := m.hiddenCPUID()
	topo := vcpu.Topology{Cores: m.cfg.CPUs}
	for id := 0; id < m.cfg.CPUs; id++ {
		// KVM's vCPU id is the initial APIC ID; the MADT lists the same.
		hw, err := m.vm.CreateVCPU(int(topo.APICID(id)))
		if err != nil {
			return err
		}
		*made = append(*made, madeVCPU{hw: hw})
	}
	vcpus := *made
	setCPUID := func(id int) error {
		apicID := int(topo.APICID(id))
		cpuid := vcpu.BuildCPUID(supported, vcpu.CPUIDOptions{ID: apicID, Topology: topo, Hide: hide, Brand: m.hostModel})
		if err := vcpus[id].hw.SetCPUID2(cpuid); err != nil {
			return fmt.Errorf("vcpu %d: %w", id, err)
		}
		// KVM may not keep what was set (kvm_pvm rewrites leaves 1, 7 and
		// 0xD): what the guest sees is what KVM gives back.
		seen, err := vcpus[id].hw.GetCPUID2()
		if err != nil {
			return fmt.Errorf("vcpu %d: %w", id, err)
		}
		vcpus[id].cpuid = seen
		return nil
	}
	var next atomic.Int64
	work := func() error {
		for id := int(next.Add(1) - 1); id < len(vcpus); id = int(next.Add(1) - 1) {
			if err := setCPUID(id); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, min(runtime.GOMAXPROCS(0), len(vcpus)))
	var wg sync.WaitGroup
	for w := 1; w < len(errs); w++ {
		wg.Go(func() { errs[w] = work() })
	}
	errs[0] = work()
	wg.Wait()
	return errors.Join(errs...)
}

// createVCPUs gives the run loop the vCPUs makeVCPUs made, on the
// machine's buses; the boot vCPU (0) gets the entry state, the others wait
// for INIT/SIPI in the in-kernel LAPIC.
func (m *Machine) createVCPUs(made []madeVCPU) error {
	var visible []vcpu.CPUIDBit
	hide := m.hiddenCPUID()
	for id, mv := range made {
		now := vcpu.StillVisible(mv.cpuid, hide)
		if m.cfg.Verbose && (id == 0 || !sameBits(now, visible)) {
			reportVisible(m.log, id, now, len(hide))
		}
		visible = now
		v := vcpu.New(vcpu.Config{ID: id, HW: mv.hw, IO: m.plat.io, MMIO: m.plat.mmio, Mem: m.mem, CPUID: mv.cpuid})
		if m.cfg.Observer != nil {
			v.SetObserver(m.cfg.Observer)
		}
		m.vcpus = append(m.vcpus, v)
	}
	// The boot vCPU's state goes in once every vCPU exists: its
	// KVM_SET_LAPIC makes KVM recompute its map from APIC IDs to vCPUs,
	// which KVM otherwise last did while creating the vCPU created last,
	// before that one was in it, so an INIT or SIPI sent to it would be
	// dropped (measured: with 2 vCPUs the AP never woke; with more, the
	// first AP's INIT recomputed the map, and the rest woke).
	if m.cfg.restoring() {
		return nil // setupMobility sets every vCPU's state, LAPIC included
	}
	if err := m.bootState(m.hw[0]); err != nil {
		return fmt.Errorf("vcpu 0: %w", err)
	}
	return nil
}

// bootState puts the boot vCPU at the kernel's entry point.
func (m *Machine) bootState(hw *kvm.VCPU) error {
	var sregs kvm.Sregs
	if err := hw.GetSregs(&sregs); err != nil {
		return err
	}
	regs := entryRegisters(m.Loaded.Entry, &sregs)
	if err := hw.SetSregs(&sregs); err != nil {
		return err
	}
	if err := hw.SetRegs(&regs); err != nil {
		return err
	}
	fpu := initialFPU()
	if err := hw.SetFPU(&fpu); err != nil {
		return err
	}
	var lapic kvm.LAPICState
	if err := hw.GetLAPIC(&lapic); err != nil {
		return err
	}
	virtualWire(&lapic)
	return hw.SetLAPIC(&lapic)
}

// Memory is the guest's RAM.
func (m *Machine) Memory() *memory.Memory { return m.mem }

// VCPUs are the machine's vCPUs, boot vCPU first.
func (m *Machine) VCPUs() []*vcpu.VCPU { return m.vcpus }

// Host is the kind of KVM host the machine runs on.
func (m *Machine) Host() kvm.HostKind { return m.host }

// Close releases the vCPUs, the VM, RAM and /dev/kvm. It must not be called
// while Run is running.
func (m *Machine) Close() error {
	var errs []error
	if m.plat != nil {
		m.plat.close()
	}
	if m.pit != nil {
		m.pit.Close()
	}
	errs = append(errs, m.pci.close())
	for _, hw := range m.hw {
		errs = append(errs, hw.Close())
	}
	m.hw = nil
	if m.vm != nil {
		errs = append(errs, m.vm.Close())
		m.vm = nil
	}
	if m.mem != nil {
		errs = append(errs, m.mem.Close())
		m.mem = nil
	}
	if m.sys != nil {
		errs = append(errs, m.sys.Close())
		m.sys = nil
	}
	return errors.Join(errs...)
}
