package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/stepper"
	"github.com/govmm/govmm/trace"
	"github.com/govmm/govmm/vcpu"
)

// inspectOptions are the flags that show what the guest makes the VMM do.
type inspectOptions struct {
	traceFile string // -trace FILE: a JSON line per exit
	stats     bool   // -stats: the exit statistics at the end
	collect   bool   // -exit-stats: keep them at all
	flight    int    // -flight N: the flight recorder's size
	gdb       string // -gdb tcp:HOST:PORT or unix:PATH
	step      bool   // govmm step (step.go)
	symbols   *stepper.Symbols
	// gdbListener is -gdb's socket, opened before Landlock (gdb.go);
	// gdbTarget what gdb's target remote takes to reach it.
	gdbListener net.Listener
	gdbTarget   string
}

// defaultFlight is how many exits the flight recorder keeps.
const defaultFlight = 4096

// flightShown is how many of them a failure prints without -v.
const flightShown = 64

// addInspectFlags adds -trace, -stats, -flight and -gdb.
func addInspectFlags(fs *pflag.FlagSet, o *inspectOptions) {
	fs.StringVar(&o.traceFile, "trace", "", "write a JSON line for every exit the guest makes to user space to FILE (seq, vcpu, reason, ns, rip, insn, and port/addr, size, dir, data, device)")
	fs.BoolVar(&o.stats, "stats", false, "print the exit statistics when the guest ends (exits by reason and by device, with count, total and mean time, and KVM's own counters); -v does too, and SIGUSR1 prints them at any time")
	fs.BoolVar(&o.collect, "exit-stats", true, "keep the exit statistics (a few hundred nanoseconds an exit, no allocation); with -exit-stats=false, -flight 0 and no -trace, -gdb or step, the vCPU loop runs without observers")
	fs.IntVar(&o.flight, "flight", defaultFlight, "the flight recorder: keep the last N exits and print them when the guest fails (triple fault, an instruction KVM cannot emulate); 0 turns it off")
	fs.StringVar(&o.gdb, "gdb", "", "wait for gdb on tcp:HOST:PORT or unix:PATH before the guest starts, and let it debug the guest (gdb's target remote)")
}

// inspector is what runVM keeps of the observers for the end of the run.
type inspector struct {
	stats    *trace.Stats
	recorder *trace.Recorder
	writer   *trace.Writer
	traceF   *os.File
	kvm      []*kvm.Stats
	verbose  bool
	show     bool // print the statistics at the end
	sigs     chan os.Signal
	done     chan struct{}
}

// newInspector makes the observers the options ask for and puts them in
// cfg.Observer. The exit statistics are kept unless -exit-stats=false
// (SIGUSR1 prints them): they allocate nothing per exit.
func newInspector(o *options, cfg *machine.Config) (*inspector, error) {
	in := &inspector{verbose: o.verbose, show: o.verbose || o.inspect.stats}
	if o.inspect.collect || o.inspect.stats || o.inspect.step {
		in.stats = trace.NewStats()
	}
	chain := vcpu.Chain{}
	if o.inspect.traceFile != "" {
		f, err := os.Create(o.inspect.traceFile)
		if err != nil {
			return nil, fmt.Errorf("-trace: %w", err)
		}
		in.traceF = f
		in.writer = trace.NewWriter(f, o.cpus, kvm.DetectHost(os.DirFS("/")) == kvm.HostPVM)
		chain = append(chain, in.writer) // first: it reads the registers the recorder then keeps
	}
	if o.inspect.flight < 0 {
		return nil, fmt.Errorf("-flight %d: give a number of exits, or 0 for none", o.inspect.flight)
	}
	if o.inspect.flight > 0 {
		in.recorder = trace.NewRecorder(o.inspect.flight, o.cpus)
		chain = append(chain, in.recorder)
	}
	if in.stats != nil {
		chain = append(chain, in.stats)
	}
	if len(chain) > 0 {
		cfg.Observer = chain
	}
	return in, nil
}

// start opens KVM's statistics of m's vCPUs (before the seccomp filter,
// which allows reading them but not opening them) and prints the
// statistics on SIGUSR1 until stop.
func (in *inspector) start(m *machine.Machine, stderr io.Writer) {
	st, err := m.KVMStats()
	if err != nil && in.verbose {
		fmt.Fprintf(stderr, "govmm: KVM's own exit counters are not available: %v\n", err)
	}
	in.kvm = st
	in.sigs = make(chan os.Signal, 1)
	in.done = make(chan struct{})
	signal.Notify(in.sigs, syscall.SIGUSR1)
	go func() {
		for {
			select {
			case <-in.sigs:
				if in.stats == nil {
					fmt.Fprintln(stderr, "govmm: (SIGUSR1) no exit statistics: -exit-stats=false")
					continue
				}
				in.print(stderr, "govmm: (SIGUSR1) ")
			case <-in.done:
				return
			}
		}
	}()
}

// snapshot is the statistics now, with KVM's counters.
func (in *inspector) snapshot() trace.Snapshot {
	var snap trace.Snapshot
	if in.stats != nil {
		snap = in.stats.Snapshot()
	}
	for _, s := range in.kvm {
		c, err := s.Counters()
		if err != nil {
			c = nil
		}
		snap.KVM = append(snap.KVM, c)
	}
	return snap
}

func (in *inspector) print(w io.Writer, prefix string) { in.snapshot().Table(w, prefix) }

// finish ends the run's inspection: the trace flushed, the statistics
// printed if asked, and after a failure the flight recorder's last exits.
func (in *inspector) finish(runErr error, stderr io.Writer) error {
	if in.done != nil {
		signal.Stop(in.sigs)
		close(in.done)
	}
	if runErr != nil && in.recorder != nil && in.recorder.Total() > 0 {
		recs := in.recorder.Records()
		kept := len(recs)
		if !in.verbose && len(recs) > flightShown {
			recs = recs[len(recs)-flightShown:]
		}
		fmt.Fprintf(stderr, "govmm: flight recorder: the last %d of the guest's %d exits (-v shows all %d kept; -trace FILE records every one):\n", len(recs), in.recorder.Total(), kept)
		for i := range recs {
			fmt.Fprintf(stderr, "  %s\n", recs[i].String())
		}
	}
	if in.show && in.stats != nil && in.done != nil { // the machine was built
		in.print(stderr, "govmm: ")
	}
	var errs []error
	if in.writer != nil {
		if err := in.writer.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("-trace: %w", err))
		}
		errs = append(errs, in.traceF.Close())
	}
	for _, s := range in.kvm {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
