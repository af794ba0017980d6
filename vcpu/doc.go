// Package vcpu runs virtual CPUs.
//
// A vCPU is a KVM file descriptor plus one OS thread that calls KVM_RUN on
// it in a loop. Each time the guest does something KVM hands back to user
// space, KVM_RUN returns an exit: a port or MMIO access (dispatched to the
// device buses), a halt, a shutdown (triple fault), a system event (power
// off, reset) or an error. Run is that loop; Stop, Pause and Resume reach
// it from other goroutines by setting a request bit and kicking the thread
// out of the guest.
//
// On PVM hosts guest ring-0 code is emulated by KVM, and the emulator gives
// up on some instructions. BuildCPUID hides the features that lead a guest
// to them (PVMHidden; there KVM shows many anyway, which StillVisible finds
// in the table KVM reads back), and the few that remain (int3, fwait,
// ldmxcsr, stmxcsr) the loop performs itself, counting each in Fixups.
package vcpu
