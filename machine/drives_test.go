package machine

import "testing"

// TestWithFile: a disk's word after ReplaceDisk names the new file and
// keeps its other options, commas quoted as parseVirtio reads them.
func TestWithFile(t *testing.T) {
	for _, tt := range []struct{ in, path, want string }{
		{"virtio-blk,file=/a.img,readonly=on,cache=unsafe,serial=root", "/b.img", "virtio-blk,file=/b.img,readonly=on,cache=unsafe,serial=root"},
		{"virtio-blk,file=/x,,y.img,serial=s", "/new,dir/z.img", "virtio-blk,file=/new,,dir/z.img,serial=s"},
	} {
		got := withFile(Device(tt.in), tt.path)
		if string(got) != tt.want {
			t.Errorf("withFile(%s, %s) = %s, want %s", tt.in, tt.path, got, tt.want)
		}
		sp, err := parseVirtio(string(got))
		if err != nil || sp.blk.Path != tt.path {
			t.Errorf("parseVirtio(%s) = path %q, %v; want %q", got, sp.blk.Path, err, tt.path)
		}
	}
}
