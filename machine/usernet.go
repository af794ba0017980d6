package machine

import (
	"io"
	"strings"

	vnet "github.com/govmm/govmm/virtio/net"
	"github.com/govmm/govmm/virtio/net/usernet"
)

// newUserNet is user-mode networking's backend: a gVisor netstack in this
// process (virtio/net/usernet) with its NAT, DNS and port forwards.
func newUserNet(n netSpec, log io.Writer) (vnet.Backend, error) {
	c := usernet.Config{GuestMAC: n.mac, Log: log}
	for _, f := range n.hostfwd {
		host, guest, err := parseHostFwd(f)
		if err != nil {
			return nil, err
		}
		c.Forwards = append(c.Forwards, usernet.Forward{UDP: strings.HasPrefix(f, "udp:"), Host: host, Guest: guest})
	}
	return usernet.New(c)
}
