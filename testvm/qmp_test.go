package testvm

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeQMP serves one QMP connection: it sends greeting (unless empty), then
// answers each command with the lines replies holds for its name, or with
// nothing when it has none. It sends every request it reads on seen.
func fakeQMP(t *testing.T, conn net.Conn, greeting string, replies map[string][]string, seen chan<- map[string]any) {
	t.Helper()
	go func() {
		defer conn.Close()
		if greeting == "" {
			// Silent: say nothing until the client gives up and closes
			// (closing here first raced with the client's SetDeadline,
			// which fails on a closed pipe).
			_, _ = io.Copy(io.Discard, conn)
			return
		}
		if _, err := conn.Write([]byte(greeting + "\n")); err != nil {
			return
		}
		dec := json.NewDecoder(conn)
		for {
			var req map[string]any
			if err := dec.Decode(&req); err != nil {
				return
			}
			seen <- req
			name, _ := req["execute"].(string)
			for _, line := range replies[name] {
				if _, err := conn.Write([]byte(line + "\r\n")); err != nil {
					return
				}
			}
		}
	}()
}

const qmpGreeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}`

func TestQMPClient(t *testing.T) {
	const event = `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}`
	caps := []string{`{"return": {}}`}
	tests := []struct {
		name     string
		greeting string // "" for a server that never speaks
		replies  map[string][]string
		line     string // for hmp
		want     string // hmp's text
		wantErr  string // "" for none; else in the error from the handshake or hmp
	}{
		{"info registers", qmpGreeting, map[string][]string{
			"qmp_capabilities":      caps,
			"human-monitor-command": {event, `{"return": "RAX=0000000000000000\r\nRIP=ffffffff81000000\r\n"}`},
		}, "info registers", "RAX=0000000000000000\r\nRIP=ffffffff81000000\r\n", ""},
		{"events before the handshake's answer", qmpGreeting, map[string][]string{
			"qmp_capabilities":      {event, event, caps[0]},
			"human-monitor-command": {`{"return": ""}`},
		}, "sendkey shift", "", ""},
		{"refused", qmpGreeting, map[string][]string{
			"qmp_capabilities":      caps,
			"human-monitor-command": {`{"error": {"class": "GenericError", "desc": "unknown command: 'info nothing'"}}`},
		}, "info nothing", "", "unknown command: 'info nothing'"},
		{"not text", qmpGreeting, map[string][]string{
			"qmp_capabilities":      caps,
			"human-monitor-command": {`{"return": {}}`},
		}, "info registers", "", "not text"},
		{"no answer", qmpGreeting, map[string][]string{"qmp_capabilities": caps}, "info registers", "", "did not answer human-monitor-command"},
		{"silent server", "", nil, "", "", "no greeting"},
		{"not a QMP server", `{"hello": 1}`, nil, "", "", "QMP banner"},
		{"handshake refused", qmpGreeting, map[string][]string{
			"qmp_capabilities": {`{"error": {"class": "CommandNotFound", "desc": "no"}}`},
		}, "", "", "refused qmp_capabilities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			seen := make(chan map[string]any, 10)
			fakeQMP(t, server, tt.greeting, tt.replies, seen)
			start := time.Now()
			got, err := func() (string, error) {
				q, err := newQMPClient(client, 300*time.Millisecond)
				if err != nil {
					return "", err
				}
				return q.hmp(tt.line)
			}()
			if time.Since(start) > 10*time.Second {
				t.Errorf("the exchange took %v: a deadline did not hold", time.Since(start))
			}
			if got != tt.want || (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("hmp(%q) = %q, %v, want %q and an error with %q", tt.line, got, err, tt.want, tt.wantErr)
			}
			if err != nil {
				return
			}
			if req := <-seen; req["execute"] != "qmp_capabilities" {
				t.Errorf("first request = %v, want qmp_capabilities", req)
			}
			req := <-seen
			args, _ := req["arguments"].(map[string]any)
			if req["execute"] != "human-monitor-command" || args["command-line"] != tt.line {
				t.Errorf("request = %v, want human-monitor-command with command-line %q", req, tt.line)
			}
		})
	}
}

func TestQMPExecuteArguments(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	seen := make(chan map[string]any, 10)
	fakeQMP(t, server, qmpGreeting, map[string][]string{
		"qmp_capabilities": {`{"return": {}}`}, "send-key": {`{"return": {}}`},
	}, seen)
	q, err := newQMPClient(client, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.execute("send-key", sendKeyArgs("shift")); err != nil {
		t.Fatalf("execute(send-key) = %v", err)
	}
	<-seen
	got, _ := json.Marshal(<-seen)
	if want := `{"arguments":{"keys":[{"data":"shift","type":"qcode"}]},"execute":"send-key"}`; string(got) != want {
		t.Errorf("send-key request = %s, want %s", got, want)
	}
}

func TestDialQMPNoSocket(t *testing.T) {
	if q, err := dialQMP(t.TempDir()+"/none.sock", time.Second); err == nil || !strings.Contains(err.Error(), "connect to QEMU's monitor") {
		t.Errorf("dialQMP(missing socket) = %v, %v, want a connect error", q, err)
	}
}

func TestWithoutVectorRegisters(t *testing.T) {
	in := "CPU#0\nRAX=0 RBX=0\nRIP=ffffffff81000000 RFL=00000046\nFCW=037f FSW=0000\nFPR0=0 0000 FPR1=0 0000\nXMM00=0 XMM01=0\nYMM00=0 0 0 0\nOpmask00=0\nEFER=0000000000000d01\n"
	want := "CPU#0\nRAX=0 RBX=0\nRIP=ffffffff81000000 RFL=00000046\nFCW=037f FSW=0000\nEFER=0000000000000d01\n"
	if got := withoutVectorRegisters(in); got != want {
		t.Errorf("withoutVectorRegisters(%q) = %q, want %q", in, got, want)
	}
}
