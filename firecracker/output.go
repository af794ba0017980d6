package firecracker

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// output is the logger's or the metrics' file: often a FIFO whose reader
// comes and goes. It is opened without blocking (O_NONBLOCK; read-write,
// so that opening a FIFO no one reads yet succeeds, as Firecracker does)
// and written with plain write(2) on the descriptor, not through Go's
// poller, so a full FIFO loses the line (counted) instead of stalling
// the API.
type output struct {
	fd        int
	level     int  // the logger's: lines above it are left out
	showLevel bool // the logger's: each line names its level
	missed    uint64
}

// openOutput opens path for appending lines, creating a regular file if
// nothing is there.
func openOutput(path string) (*output, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFIFO, unix.S_IFCHR:
	default:
		unix.Close(fd)
		return nil, fmt.Errorf("%s is not a file, a FIFO or a character device", path)
	}
	return &output{fd: fd, level: logLevels["warning"]}, nil
}

// writeLine writes b and a newline in one write, whole or not at all
// where the file is a FIFO (a write of at most PIPE_BUF bytes is atomic).
func (o *output) writeLine(b []byte) error {
	line := append(b[:len(b):len(b)], '\n')
	for len(line) > 0 {
		n, err := unix.Write(o.fd, line)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			o.missed++
			return err
		}
		line = line[n:]
	}
	return nil
}

func (o *output) close() { unix.Close(o.fd) }
