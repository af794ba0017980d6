package migration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/snapshot"
)

// Incoming is a migration received: the guest's RAM and state, for
// machine.New (Restore), and the connection for the hand-over.
type Incoming struct {
	Restore *machine.Restore
	// Source is the govmm version that sent it.
	Source string
	Rounds int   // rounds received
	Pages  int64 // pages received, zero pages included
	Bytes  int64

	conn net.Conn
	rr   *recordReader
	rw   *recordWriter
}

// Receive reads a migration from conn: the source's configuration, which
// check may refuse (it must match this govmm's flags), every round of
// pages into fresh guest RAM, and the state. It returns once the source
// has sent everything; then build the machine and call Ready, then
// Running once it runs. On error it closes conn, after telling the
// source why when it still can, and frees the RAM.
func Receive(conn net.Conn, check func(machine.SavedConfig) error, progress func(RoundEnd)) (_ *Incoming, err error) {
	in := &Incoming{conn: conn, rr: newRecordReader(conn), rw: &recordWriter{w: conn}}
	var mem *memory.Memory
	defer func() {
		if err != nil {
			_ = in.rw.write(RecAbort, []byte(err.Error())) // the source may be gone
			conn.Close()
			if mem != nil {
				mem.Close()
			}
		}
	}()
	if in.Source, err = readHeader(in.rr.r); err != nil {
		return nil, fmt.Errorf("incoming migration: %w", err)
	}
	rec, err := in.rr.read()
	if err != nil {
		return nil, fmt.Errorf("incoming migration: %w", phaseErr("configuration", err))
	}
	if rec.Type != RecConfig {
		return nil, fmt.Errorf("incoming migration: %w", streamErr("the first record is %v, want %v", rec.Type, RecConfig))
	}
	var cfg machine.SavedConfig
	if err := json.Unmarshal(rec.Payload, &cfg); err != nil {
		return nil, fmt.Errorf("incoming migration: %w", streamErr("its configuration does not decode: %v", err))
	}
	if cfg.MemSize == 0 || cfg.MemSize%pageSize != 0 || cfg.MemSize > 1<<46 || cfg.CPUs < 1 || cfg.CPUs > 1024 {
		return nil, fmt.Errorf("incoming migration: %w", streamErr("its configuration has %d bytes of RAM and %d vCPUs", cfg.MemSize, cfg.CPUs))
	}
	if err := check(cfg); err != nil {
		return nil, fmt.Errorf("incoming migration from %s: %w", in.Source, err)
	}
	if mem, err = memory.New(cfg.MemSize); err != nil {
		return nil, fmt.Errorf("incoming migration: %w", err)
	}
	pages := mem.Size() / pageSize
	round := 0
	var state *machine.State
	for {
		rec, err := in.rr.read()
		if err != nil {
			what := "first round of pages"
			if round > 0 {
				what = fmt.Sprintf("pages and state after round %d", round-1)
			}
			return nil, fmt.Errorf("incoming migration: %w", phaseErr(what, err))
		}
		in.Bytes += int64(recHeader + len(rec.Payload) + recSum)
		switch rec.Type {
		case RecPages:
			h, data, err := parsePages(rec.Payload, pages)
			if err != nil {
				return nil, fmt.Errorf("incoming migration: %w", err)
			}
			host, err := mem.HostPages(int(h.First), int(h.N))
			if err != nil {
				// A run across the MMIO hole's edge: the sender splits there.
				return nil, fmt.Errorf("incoming migration: %w", streamErr("pages %d-%d cross a region's end: %v", h.First, h.First+uint64(h.N)-1, err))
			}
			if h.Zero {
				clear(host)
			} else {
				copy(host, data)
			}
			in.Pages += int64(h.N)
		case RecRoundEnd:
			e, err := parseRoundEnd(rec.Payload)
			if err != nil {
				return nil, fmt.Errorf("incoming migration: %w", err)
			}
			round = int(e.Round) + 1
			in.Rounds = round
			if progress != nil {
				progress(e)
			}
		case RecState:
			state = new(machine.State)
			if err := json.Unmarshal(rec.Payload, state); err != nil {
				return nil, fmt.Errorf("incoming migration: %w", streamErr("its state does not decode: %v", err))
			}
		case RecEnd:
			if state == nil {
				return nil, fmt.Errorf("incoming migration: %w", streamErr("it ended without the machine's state"))
			}
			in.Restore = &machine.Restore{State: state, Memory: mem}
			mem = nil // the Incoming has it now
			return in, nil
		case RecAbort:
			return nil, fmt.Errorf("incoming migration: the source gave up: %s", rec.Payload)
		default:
			return nil, fmt.Errorf("incoming migration: %w", streamErr("unexpected %v record", rec.Type))
		}
	}
}

// phaseErr says where the stream broke.
func phaseErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("the source closed the connection during the %s: the guest goes on running there: %w", what, err)
	}
	return fmt.Errorf("during the %s: %w", what, err)
}

// Ready tells the source the machine is built and waits for its go: once
// Ready returns nil, the source will not run the guest, and this side
// must. Call it with the machine built and not yet running.
func (in *Incoming) Ready() error {
	if err := in.rw.write(RecReady); err != nil {
		return fmt.Errorf("incoming migration: telling the source the machine is ready: %w", err)
	}
	if err := in.conn.SetReadDeadline(time.Now().Add(handoverTimeout)); err != nil {
		return err
	}
	rec, err := in.rr.read()
	if err != nil {
		return fmt.Errorf("incoming migration: %w", phaseErr("hand-over (before its go)", err))
	}
	switch rec.Type {
	case RecGo:
		return nil
	case RecAbort:
		return fmt.Errorf("incoming migration: the source gave up: %s", rec.Payload)
	}
	return fmt.Errorf("incoming migration: %w", streamErr("the source sent %v, want %v", rec.Type, RecGo))
}

// Running tells the source the guest runs here, and closes the
// connection.
func (in *Incoming) Running() error {
	err := in.rw.write(RecRunning)
	return errors.Join(err, in.conn.Close())
}

// Abort tells the source why this side gives up, and closes the
// connection.
func (in *Incoming) Abort(why error) {
	_ = in.rw.write(RecAbort, []byte(why.Error())) // the source may be gone
	in.conn.Close()
}

// Version is the stream's sender version: this govmm's.
func Version() string { return snapshot.Version() }
