package testvm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// qmpTimeout bounds each exchange with QEMU's monitor: connecting and the
// handshake, and each command with its answer.
const qmpTimeout = 10 * time.Second

// qmpClient speaks the QEMU Machine Protocol (docs/interop/qmp-spec.rst)
// over one connection, one command at a time. Every exchange is bounded by
// timeout: a monitor that says nothing cannot hang the caller.
type qmpClient struct {
	conn    net.Conn
	dec     *json.Decoder
	timeout time.Duration
}

// qmpMessage is any message from the server: the greeting, a command's
// success or error, or an asynchronous event.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
}

// dialQMP connects to the monitor listening on the unix socket path (QEMU's
// -qmp unix:PATH,server=on,wait=off) and completes the handshake.
func dialQMP(path string, timeout time.Duration) (*qmpClient, error) {
	conn, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("testvm: connect to QEMU's monitor: %w", err)
	}
	q, err := newQMPClient(conn, timeout)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// newQMPClient reads the server's greeting on conn and leaves capabilities
// negotiation mode, as a client must before any other command.
func newQMPClient(conn net.Conn, timeout time.Duration) (*qmpClient, error) {
	q := &qmpClient{conn: conn, dec: json.NewDecoder(conn), timeout: timeout}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("testvm: QEMU's monitor: %w", err)
	}
	var greeting qmpMessage
	if err := q.dec.Decode(&greeting); err != nil {
		return nil, fmt.Errorf("testvm: QEMU's monitor sent no greeting: %w", err)
	}
	if greeting.QMP == nil {
		return nil, errors.New("testvm: QEMU's monitor did not greet with a QMP banner: is it a QMP socket (-qmp, not -monitor)?")
	}
	if _, err := q.execute("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return q, nil
}

// execute runs a QMP command and returns its "return" value. Events that
// arrive meanwhile are skipped.
func (q *qmpClient) execute(command string, args any) (json.RawMessage, error) {
	if err := q.conn.SetDeadline(time.Now().Add(q.timeout)); err != nil {
		return nil, fmt.Errorf("testvm: QEMU's monitor: %w", err)
	}
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
	}{command, args}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("testvm: QMP command %s: %w", command, err)
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("testvm: send %s to QEMU's monitor: %w", command, err)
	}
	for {
		var m qmpMessage
		if err := q.dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("testvm: QEMU's monitor did not answer %s: %w", command, err)
		}
		switch {
		case m.Error != nil:
			return nil, fmt.Errorf("testvm: QEMU's monitor refused %s: %s (%s)", command, m.Error.Desc, m.Error.Class)
		case m.Return != nil:
			return m.Return, nil
		}
		// An event (or anything else without an answer): read on.
	}
}

// hmp runs a human monitor command line, like "info registers", and
// returns its text.
func (q *qmpClient) hmp(line string) (string, error) {
	ret, err := q.execute("human-monitor-command", map[string]string{"command-line": line})
	if err != nil {
		return "", err
	}
	var out string
	if err := json.Unmarshal(ret, &out); err != nil {
		return "", fmt.Errorf("testvm: QEMU's monitor answered %q with %s, not text", line, ret)
	}
	return out, nil
}

func (q *qmpClient) Close() error {
	return q.conn.Close()
}
