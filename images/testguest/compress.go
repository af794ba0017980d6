package testguest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"os/exec"

	"github.com/klauspost/compress/zstd"
)

// compress returns data compressed as Linux's build compresses vmlinux.bin
// for a bzImage payload, followed, as Linux's size_append does for every
// format, by the uncompressed size as 4 little-endian bytes.
func compress(c Compression, data []byte) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case Gzip:
		out, err = gzipBytes(data)
	case LZ4:
		out, err = filter(data, "lz4", "apt-get install lz4", "-l", "-9", "-c")
	case XZ:
		out, err = filter(data, "xz", "apt-get install xz-utils", "--check=crc32", "-6", "-c")
	case Zstd:
		if _, lookErr := exec.LookPath("zstd"); lookErr == nil {
			out, err = filter(data, "zstd", "", "-19", "-q", "-c")
		} else {
			out, err = zstdBytes(data)
		}
	default:
		return nil, fmt.Errorf("testguest: unknown compression %q (want one of %v)", c, Compressions)
	}
	if err != nil {
		return nil, err
	}
	return binary.LittleEndian.AppendUint32(out, uint32(len(data))), nil
}

func gzipBytes(data []byte) ([]byte, error) {
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("testguest: gzip: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("testguest: gzip: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("testguest: gzip: %w", err)
	}
	return b.Bytes(), nil
}

func zstdBytes(data []byte) ([]byte, error) {
	w, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		return nil, fmt.Errorf("testguest: zstd: %w", err)
	}
	defer w.Close()
	return w.EncodeAll(data, nil), nil
}

// filter pipes data through a host compressor.
func filter(data []byte, tool, install string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(tool); err != nil {
		return nil, fmt.Errorf("testguest: %s not found: %s: %w", tool, install, err)
	}
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(data)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("testguest: %s %v: %s%w", tool, args, stderr.String(), err)
	}
	return out.Bytes(), nil
}
