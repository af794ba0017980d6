package pci

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/blk"
)

// TestDiskSwapConfigChange: a virtio-blk disk whose file is swapped
// (blk.Device.Replace with the transport's ConfigChanged, as the machine
// does for PATCH /drives) shows the new capacity in its configuration
// space (5.2.4), with config_generation bumped (4.1.4.3.1), and sends
// the configuration change notification: with MSI-X off, the ISR's
// configuration bit (bit 1) and INTx (4.1.4.5, 4.1.5.3); with MSI-X on,
// the config_msix_vector's message (4.1.5.4).
func TestDiskSwapConfigChange(t *testing.T) {
	dir := t.TempDir()
	empty, img := filepath.Join(dir, "placeholder"), filepath.Join(dir, "image")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, make([]byte, 16*blk.SectorSize), 0o644); err != nil {
		t.Fatal(err)
	}
	dev, err := blk.Open(blk.Options{Path: empty})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	r := newRig(t, dev, nil)
	r.negotiate(virtio.FeatureVersion1)
	r.setupQueue(0, 16, 0x10000, NoVector)
	r.write(regDeviceStatus, 1, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	if c := r.read(DeviceOffset, 8); c != 0 {
		t.Fatalf("capacity of the empty placeholder = %d, want 0", c)
	}
	gen := r.read(regConfigGeneration, 1)

	// INTx: the ISR's configuration bit.
	if err := dev.Replace(img, false, r.tr.ConfigChanged); err != nil {
		t.Fatal(err)
	}
	select {
	case gsi := <-r.irqs.high:
		if gsi != rigGSI {
			t.Fatalf("GSI %d raised, want %d", gsi, rigGSI)
		}
	case <-time.After(timeout):
		t.Fatalf("INTx not asserted within %v of the swap", timeout)
	}
	if g := r.read(regConfigGeneration, 1); g != (gen+1)&0xff {
		t.Errorf("config_generation %d after the swap, want %d", g, gen+1)
	}
	if c := r.read(DeviceOffset, 8); c != 16 {
		t.Errorf("capacity after the swap = %d, want 16", c)
	}
	if isr := r.read(ISROffset, 1); isr != isrConfig {
		t.Errorf("ISR = %#x, want the configuration bit %#x", isr, isrConfig)
	}
	if r.irqs.intx(rigGSI) {
		t.Errorf("INTx still asserted after reading the ISR")
	}

	// MSI-X: the configuration vector's message, for a resize.
	r.enableMSIX(2)
	r.write(regConfigMSIXVector, 2, 1)
	if err := os.Truncate(img, 40*blk.SectorSize); err != nil {
		t.Fatal(err)
	}
	if err := dev.Replace(img, false, r.tr.ConfigChanged); err != nil {
		t.Fatal(err)
	}
	r.waitMSI(0x41)
	if g := r.read(regConfigGeneration, 1); g != (gen+2)&0xff {
		t.Errorf("config_generation %d after the resize, want %d", g, gen+2)
	}
	if c := r.read(DeviceOffset, 8); c != 40 {
		t.Errorf("capacity after the resize = %d, want 40", c)
	}
}
