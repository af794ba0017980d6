package machine

// CtrlAltDel types Ctrl-Alt-Del on the guest's keyboard: the i8042 queues
// the keys' presses and releases and interrupts the guest (IRQ 1) for
// each scan code, as Firecracker's SendCtrlAltDel does. Linux's keyboard
// driver reboots on it (unless user space turned that off with reboot(2)'s
// CAD_OFF), and with reboot=k the reboot reaches govmm as the i8042's
// reset line, which ends the run. It fails when the guest has turned the
// keyboard's scanning off or is not reading the keys it was sent.
func (m *Machine) CtrlAltDel() error { return m.plat.i8042.CtrlAltDel() }
