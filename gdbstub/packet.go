// Package gdbstub speaks the GDB remote serial protocol (the GDB manual,
// appendix E "GDB Remote Serial Protocol"), so that gdb's `target remote`
// can debug a guest: registers, memory, breakpoints, single steps,
// continue, Ctrl-C, one thread per vCPU.
//
// It talks to a Target, which govmm implements over package debugger
// (target.go); the tests use a fake one.
package gdbstub

import (
	"errors"
	"fmt"
)

// Framing (E.1 "Overview"): a packet is $payload#cc, cc the modulo-256
// sum of the payload's bytes in two hex digits. The receiver answers +
// (received) or - (send again) unless no-ack mode is on. Inside a
// payload, '}' escapes the next byte, which is XORed with 0x20: the
// bytes $, #, } and * must be escaped in binary data. A lone 0x03 is an
// interrupt request (Ctrl-C).

const (
	maxPacket = 16 << 10 // the largest payload accepted; qSupported says 0x4000
	interrupt = 0x03
	escape    = '}'
)

// EventKind is what ReadEvent found in the stream.
type EventKind int

// Events. The zero value is none.
const (
	_ EventKind = iota
	EventPacket
	EventAck       // +
	EventNack      // -
	EventInterrupt // 0x03
	EventBadPacket // a packet whose checksum did not match: answer -
)

// Event is one thing the client sent.
type Event struct {
	Kind    EventKind
	Payload []byte // the unescaped payload of a packet
}

// ErrNeedMore says the buffer holds no whole event yet.
var ErrNeedMore = errors.New("need more bytes")

// ParseEvent reads the first event in buf and returns it with how many
// bytes it took. Bytes that start no event (noise between packets) are
// skipped. With ErrNeedMore, consumed is how much noise can be dropped.
func ParseEvent(buf []byte) (Event, int, error) {
	for i := 0; i < len(buf); i++ {
		switch buf[i] {
		case '+':
			return Event{Kind: EventAck}, i + 1, nil
		case '-':
			return Event{Kind: EventNack}, i + 1, nil
		case interrupt:
			return Event{Kind: EventInterrupt}, i + 1, nil
		case '$':
			ev, n, err := parsePacket(buf[i:])
			if errors.Is(err, ErrNeedMore) {
				return Event{}, i, err
			}
			return ev, i + n, err
		}
	}
	return Event{}, len(buf), ErrNeedMore
}

// parsePacket reads $payload#cc at the start of buf.
func parsePacket(buf []byte) (Event, int, error) {
	var sum byte
	var payload []byte
	for i := 1; i < len(buf); i++ {
		c := buf[i]
		switch {
		case c == '#':
			if i+2 >= len(buf) {
				return Event{}, 0, ErrNeedMore
			}
			want, ok := hexByte(buf[i+1], buf[i+2])
			if !ok || want != sum {
				return Event{Kind: EventBadPacket}, i + 3, nil
			}
			if payload == nil {
				payload = []byte{}
			}
			return Event{Kind: EventPacket, Payload: payload}, i + 3, nil
		case c == '$':
			// A new packet starts inside this one: the first was cut off.
			return Event{Kind: EventBadPacket}, i, nil
		case len(payload) >= maxPacket:
			return Event{Kind: EventBadPacket}, i, fmt.Errorf("packet longer than %d bytes", maxPacket)
		case c == escape:
			if i+1 >= len(buf) {
				return Event{}, 0, ErrNeedMore
			}
			sum += c + buf[i+1]
			payload = append(payload, buf[i+1]^0x20)
			i++
		default:
			sum += c
			payload = append(payload, c)
		}
	}
	return Event{}, 0, ErrNeedMore
}

// hexByte reads two hex digits.
func hexByte(a, b byte) (byte, bool) {
	x, ok1 := hexDigit(a)
	y, ok2 := hexDigit(b)
	return x<<4 | y, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

const hexChars = "0123456789abcdef"

// Frame makes $payload#cc, escaping the bytes that must be.
func Frame(payload []byte) []byte {
	out := make([]byte, 0, len(payload)+8)
	out = append(out, '$')
	var sum byte
	for _, c := range payload {
		if c == '$' || c == '#' || c == escape || c == '*' {
			out = append(out, escape, c^0x20)
			sum += escape + (c ^ 0x20)
			continue
		}
		out = append(out, c)
		sum += c
	}
	return append(out, '#', hexChars[sum>>4], hexChars[sum&15])
}
