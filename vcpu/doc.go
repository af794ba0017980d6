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
// An Observer (observe.go) sees every exit before and after the loop
// handles it, with a Handle on the stopped vCPU's registers and memory,
// and answers what the loop does next: go on, run one instruction (KVM's
// single-step), or hold the vCPU in the Debug state (debug.go), where a
// debugger reaches it with Do until Release. The exit tracer, statistics
// and flight recorder (package trace) and the stepper and gdb stub
// (packages debugger, stepper, gdbstub) are observers; with none the loop
// reads no clock and allocates nothing.
//
// On PVM hosts guest ring-0 code is emulated by KVM, and the emulator gives
// up on some instructions. BuildCPUID hides the features that lead a guest
// to them (PVMHidden; there KVM shows many anyway, which StillVisible finds
// in the table KVM reads back), and the few that remain (int3, fwait,
// ldmxcsr, stmxcsr) the loop performs itself, counting each in Fixups.
package vcpu
