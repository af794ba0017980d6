package images

import (
	"context"
	"encoding/base64"
	"io"
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
// power off; with shell, it starts an interactive shell on the console
// before powering off. cmd travels as govmm.cmd=<base64url without padding>
// (RFC 4648 section 5), so it may hold any bytes. An empty cmd gives just
// the interactive shell, which is what the agent does with no parameters.
func AgentCommandLine(cmd string, shell bool) string {
	var s string
	if cmd != "" {
		s = "govmm.cmd=" + base64.RawURLEncoding.EncodeToString([]byte(cmd))
	}
	if shell && cmd != "" {
		s += " govmm.shell=1"
	}
	return s
}

// Markers the guest agent prints on the console, each on a line of its own.
const (
	// AgentReady is the first thing the agent prints: user space is up.
	AgentReady = "GOVMM-AGENT-READY"
	// AgentModule starts each line about a kernel module:
	// "GOVMM-AGENT-MODULE virtio_net ok" or "... FAILED: <why>".
	AgentModule = "GOVMM-AGENT-MODULE"
	// AgentExit is followed by the exit status of govmm.cmd.
	AgentExit = "GOVMM-AGENT-EXIT"
)
