package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// msixRows: MSI-X delivery latency on govmm's PCI test device, from the
// test guest's mode=msixbench (images/testguest/src/pci.c), which times
// three loops of n between boot-timer marks, in ring 0:
//
//	0x60-0x61  write RAISE 0 (an MMIO exit; govmm's vCPU thread sends the
//	           MSI by writing the vector's irqfd), wait in hlt for the
//	           handler
//	0x62-0x63  write DOORBELL (KVM signals an ioeventfd without leaving
//	           the kernel; govmm's doorbell goroutine writes the irqfd),
//	           wait in hlt for the handler
//	0x64-0x65  write MAGIC, which does nothing: the bare MMIO exit
//
// Each row gives one interrupt's round trip, write to handled, against
// the bare exit of the same run: the peer column is govmm itself (cvmm
// and QEMU have no such device).
func (s *suite) msixRows(ctx context.Context) []row {
	if !s.wants("msix") {
		return nil
	}
	n := max(s.n/100, 100)
	v := s.govmm
	argv := v.argv
	v.argv = func(cmdline string, verbose bool) []string {
		return append(argv(cmdline, verbose), "-device", "pci-testdev")
	}
	s.progress("msix: %d runs of govmm -device pci-testdev, mode=msixbench n=%d (+1 warm-up)", s.runs, n)
	var raise, bell, bare []time.Duration
	for i := 0; i <= s.runs; i++ {
		res, err := runOnce(ctx, v, fmt.Sprintf("mode=msixbench n=%d", n), false, s.timeout, fmt.Sprintf("msixbench n=%d", n))
		if err != nil {
			c := s.fail(err)
			return []row{{Name: "MSI-X interrupt round trip", Govmm: c, Peer: c, Unit: "us"}}
		}
		marks := map[int]int64{}
		for _, line := range strings.Split(res.stderr, "\n") {
			if label, us, ok := parseMark(line); ok {
				marks[label] = us
			}
		}
		per := func(from, to int) (time.Duration, error) {
			a, ok1 := marks[from]
			b, ok2 := marks[to]
			if !ok1 || !ok2 || b < a {
				return 0, fmt.Errorf("govmm mode=msixbench: no boot-timer marks %#x and %#x in its log:\n%s", from, to, tail(res.stderr))
			}
			return time.Duration(b-a) * time.Microsecond / time.Duration(n), nil
		}
		r, err1 := per(0x60, 0x61)
		d, err2 := per(0x62, 0x63)
		e, err3 := per(0x64, 0x65)
		if err := firstError(err1, err2, err3); err != nil {
			c := s.fail(err)
			return []row{{Name: "MSI-X interrupt round trip", Govmm: c, Peer: c, Unit: "us"}}
		}
		if i > 0 { // the first run warms up
			raise, bell, bare = append(raise, r), append(bell, d), append(bare, e)
		}
	}
	us := func(d time.Duration) cell { return value(float64(d) / float64(time.Microsecond)) }
	exit := median(bare)
	note := fmt.Sprintf("peer: govmm's bare MMIO exit from ring 0 in the same runs (n=%d, median of %d)", n, s.runs)
	return []row{
		{Name: "MSI-X round trip, write -> exit -> irqfd -> handler", Govmm: us(median(raise)), Peer: us(exit), Unit: "us", Notes: note},
		{Name: "MSI-X round trip, doorbell -> ioeventfd -> irqfd -> handler", Govmm: us(median(bell)), Peer: us(exit), Unit: "us", Notes: note},
	}
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
