package agentproto

import "strconv"

// Markers the agent prints on the console.
const (
	// Ready is the agent's first line: user space is up.
	Ready = "GOVMM-AGENT-READY"
	// Module starts each line about a kernel module:
	// "GOVMM-AGENT-MODULE virtio_net ok" or "... FAILED: <why>".
	Module = "GOVMM-AGENT-MODULE"
	// Start is a line of its own just before the command's first byte.
	Start = "GOVMM-AGENT-START"
	// Exit follows the command's last byte, with its status:
	// "\x1eGOVMM-AGENT-EXIT 3\n" (see ExitLine).
	Exit = "GOVMM-AGENT-EXIT"
)

// exitLead is the byte before Exit. The command's output need not end with
// a newline, so the marker cannot wait for the start of a line; a newline
// would do, but the filter would then hold back every newline of the
// output until the next byte shows it is not the marker's. ASCII's record
// separator is rare in a command's output, so holding it back costs
// nothing.
const exitLead = "\x1e"

// endOfOutput is what ends the command's output on the console.
const endOfOutput = exitLead + Exit + " "

// StartLine is what the agent prints right before running the command. The
// newline in front puts the marker on a line of its own whatever came
// before.
func StartLine() string { return "\n" + Start + "\n" }

// ExitLine is what the agent prints right after the command ends with
// status.
func ExitLine(status int) string { return endOfOutput + strconv.Itoa(status) + "\n" }
