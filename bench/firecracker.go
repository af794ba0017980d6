package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// firecrackerRows: govmm's Firecracker API (govmm firecracker) against
// its plain command line, on the test guest. Launch to an answering
// socket (what the SDK waits for) beside the plain command's launch to
// the guest's first instruction; InstanceStart to the first instruction
// through the API beside launch to it on the command line (the API run
// has done its launch, KVM's opening and the configuration already); and
// --no-api --config-file's launch to the first instruction beside the
// plain command's. The first instruction is the test guest's boot-timer
// mark at its 64-bit entry, seen on stderr.
func (s *suite) firecrackerRows(ctx context.Context) []row {
	if !s.wants("firecracker") {
		return nil
	}
	names := []string{"launch to answering socket, govmm firecracker", "InstanceStart to first guest instruction, API vs command line", "launch to first guest instruction, --config-file vs command line"}
	failAll := func(err error) []row {
		c := s.fail(err)
		var rows []row
		for _, n := range names {
			rows = append(rows, row{Name: n, Govmm: c, Peer: c, Unit: "ms"})
		}
		return rows
	}
	argv := s.govmm.argv(bootCmdline, false)
	bin, elf := argv[0], argv[slices.Index(argv, "-kernel")+1]
	dir, err := os.MkdirTemp("", "govmm-bench-fc-")
	if err != nil {
		return failAll(err)
	}
	defer os.RemoveAll(dir)
	cfgFile := filepath.Join(dir, "vm.json")
	cfg := fmt.Sprintf(`{"boot-source":{"kernel_image_path":%q,"boot_args":%q},"machine-config":{"vcpu_count":1,"mem_size_mib":%d}}`, elf, bootCmdline, s.memMiB)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return failAll(err)
	}
	want := "ring3 ok"
	s.progress("firecracker: %d runs each (+1 warm-up) of the API, --config-file and the plain command line", s.runs)
	var sock, start, plain, file []time.Duration
	for i := 0; i <= s.runs; i++ {
		a, err := s.fcAPIRun(ctx, bin, elf, filepath.Join(dir, fmt.Sprintf("fc%d.sock", i)), want)
		if err != nil {
			return failAll(err)
		}
		b, err := runOnce(ctx, s.govmm, bootCmdline, false, s.timeout, want)
		if err == nil && b.markSeen == 0 {
			err = fmt.Errorf("govmm printed no boot-timer mark:\n%s", tail(b.stderr))
		}
		if err != nil {
			return failAll(err)
		}
		fileVMM := vmm{name: "govmm firecracker --config-file", argv: func(string, bool) []string {
			return []string{bin, "firecracker", "--no-api", "--config-file", cfgFile, "--cache", filepath.Dir(elf)}
		}}
		c, err := runOnce(ctx, fileVMM, bootCmdline, false, s.timeout, want)
		if err == nil && c.markSeen == 0 {
			err = fmt.Errorf("govmm firecracker --config-file printed no boot-timer mark:\n%s", tail(c.stderr))
		}
		if err != nil {
			return failAll(err)
		}
		if i > 0 {
			sock, start = append(sock, a.socket), append(start, a.startToMark)
			plain, file = append(plain, b.markSeen), append(file, c.markSeen)
		}
	}
	note := fmt.Sprintf("median of %d", s.runs)
	return []row{
		{Name: names[0], Govmm: value(durationMS(median(sock))), Peer: value(durationMS(median(plain))), Unit: "ms",
			Notes: "peer: the plain command's launch to the guest's first instruction; the SDK allows 3 s; " + note},
		{Name: names[1], Govmm: value(durationMS(median(start))), Peer: value(durationMS(median(plain))), Unit: "ms",
			Notes: "govmm: PUT /actions InstanceStart sent to the mark; peer: the plain command's launch to the mark; " + note},
		{Name: names[2], Govmm: value(durationMS(median(file))), Peer: value(durationMS(median(plain))), Unit: "ms",
			Notes: "govmm firecracker --no-api --config-file against govmm -kernel; " + note},
	}
}

// fcAPIResult is one run through the API.
type fcAPIResult struct {
	socket      time.Duration // launch to the first answer on the socket
	startToMark time.Duration // InstanceStart sent to the first boot-timer mark
}

// markSignal is a markWriter that says when the first mark came.
type markSignal struct {
	markWriter
	once sync.Once
	seen chan struct{}
}

func (m *markSignal) Write(p []byte) (int, error) {
	n, err := m.markWriter.Write(p)
	if seen, _ := m.marks(); seen != 0 {
		m.once.Do(func() { close(m.seen) })
	}
	return n, err
}

// fcAPIRun launches govmm firecracker, waits for its socket, configures
// the test guest and starts it, and waits for the guest to finish.
func (s *suite) fcAPIRun(ctx context.Context, bin, elf, sock, want string) (fcAPIResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "firecracker", "--api-sock", sock, "--cache", filepath.Dir(elf))
	var stdout bytes.Buffer
	mw := &markSignal{seen: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &stdout, mw
	cmd.WaitDelay = 2 * time.Second
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	do := func(method, path, body string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	mw.start = time.Now()
	if err := cmd.Start(); err != nil {
		return fcAPIResult{}, err
	}
	var r fcAPIResult
	fail := func(err error) (fcAPIResult, error) {
		cancel()
		cmd.Wait()
		return r, fmt.Errorf("govmm firecracker: %w\n%s", err, tail(stdout.String()+mw.String()))
	}
	// The SDK polls every 10 ms; this polls every 100 µs to see the
	// moment the socket answers.
	for {
		if st, err := do("GET", "/", ""); err == nil && st == 200 {
			r.socket = time.Since(mw.start)
			break
		}
		if ctx.Err() != nil {
			return fail(errors.New("its socket never answered"))
		}
		time.Sleep(100 * time.Microsecond)
	}
	for _, q := range [][2]string{
		{"/machine-config", fmt.Sprintf(`{"vcpu_count":1,"mem_size_mib":%d}`, s.memMiB)},
		{"/boot-source", fmt.Sprintf(`{"kernel_image_path":%q,"boot_args":%q}`, elf, bootCmdline)},
	} {
		if st, err := do("PUT", q[0], q[1]); err != nil || st != 204 {
			return fail(fmt.Errorf("PUT %s: %d, %v", q[0], st, err))
		}
	}
	t0 := time.Since(mw.start)
	if st, err := do("PUT", "/actions", `{"action_type":"InstanceStart"}`); err != nil || st != 204 {
		return fail(fmt.Errorf("InstanceStart: %d, %v", st, err))
	}
	select {
	case <-mw.seen:
	case <-ctx.Done():
		return fail(errors.New("no boot-timer mark"))
	}
	seen, _ := mw.marks()
	r.startToMark = seen - t0
	if err := cmd.Wait(); err != nil {
		return r, fmt.Errorf("govmm firecracker: %w\n%s", err, tail(stdout.String()+mw.String()))
	}
	if !strings.Contains(stdout.String(), want) {
		return r, fmt.Errorf("govmm firecracker: the guest did not say %q:\n%s", want, tail(stdout.String()+mw.String()))
	}
	return r, nil
}
