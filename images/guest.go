package images

import (
	"context"
	"io"

	"github.com/govmm/govmm/images/agentproto"
)

// Guest is what the default guest boots.
type Guest struct {
	Kernel KernelInfo
	Initrd string // path of the uncompressed cpio initrd
}

// DefaultGuest fetches Debian's cloud kernel and builds the default initrd
// with its virtio modules, both into cacheDir (reused when already there).
// moduleRoot is govmm's module root; "" finds it from the working directory.
func DefaultGuest(ctx context.Context, cacheDir, moduleRoot string, log io.Writer) (Guest, error) {
	k, err := DebianKernel(ctx, cacheDir, log)
	if err != nil {
		return Guest{}, err
	}
	initrd, err := BuildInitrd(ctx, InitrdOptions{CacheDir: cacheDir, ModuleRoot: moduleRoot, Kernel: k, Log: log})
	if err != nil {
		return Guest{}, err
	}
	return Guest{Kernel: k, Initrd: initrd}, nil
}

// AgentCommandLine returns the kernel command-line parameters that make the
// guest agent run cmd with /bin/sh -c, print "GOVMM-AGENT-EXIT <status>" and
// end the VM; with shell, it starts an interactive shell on the console
// first. An empty cmd gives just the interactive shell, which is what the
// agent does with no parameters. It is agentproto.Encode for these two
// fields; that package has the rest (the exit device, quiet).
func AgentCommandLine(cmd string, shell bool) string {
	return agentproto.Encode(agentproto.Config{Cmd: cmd, Shell: shell})
}

// Markers the guest agent prints on the console, each on a line of its own
// (see package agentproto).
const (
	// AgentReady is the first thing the agent prints: user space is up.
	AgentReady = agentproto.Ready
	// AgentModule starts each line about a kernel module:
	// "GOVMM-AGENT-MODULE virtio_net ok" or "... FAILED: <why>".
	AgentModule = agentproto.Module
	// AgentExit is followed by the exit status of govmm.cmd.
	AgentExit = agentproto.Exit
)
