// Package agentproto is what govmm and its guest agent (images/agent) say
// to each other, in one place: the kernel-command-line parameters the host
// writes and the agent reads (Config, Encode, Parse), the markers the agent
// prints on the console (Ready, Start, Exit, ...), and the host's filter
// that picks a command's output out of the console (Filter).
//
// It uses the standard library only: u-root's builder compiles it into the
// guest with the agent.
//
// The conversation, for `govmm exec -- CMD`:
//
//	host  kernel command line: ... govmm.cmd=<base64url CMD> govmm.exit=mmio:0xd0001000 govmm.quiet=1
//	guest GOVMM-AGENT-READY
//	guest GOVMM-AGENT-MODULE virtio_ring ok            (one line per module)
//	guest \nGOVMM-AGENT-START\n                         (the console now passes bytes as they are)
//	guest ...CMD's output, byte for byte...
//	guest \x1eGOVMM-AGENT-EXIT 3\n
//	guest the status byte (3) written to the debug-exit device, which ends the VM
package agentproto
