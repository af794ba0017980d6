// Command sha256sum prints the SHA-256 digest of each file, or of standard
// input when no file (or "-") is given, in GNU coreutils' format: the
// digest in lower-case hex, two spaces, the name. It is in the default
// initrd because u-root offers only `shasum -a 256`, and scripts expect
// sha256sum.
//
//	sha256sum [FILE]...
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run sums each name (stdin for "-" or none) and returns 1 if any failed.
func run(names []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(names) == 0 {
		names = []string{"-"}
	}
	status := 0
	for _, name := range names {
		sum, err := sumOf(name, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "sha256sum: %v\n", err)
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "%s  %s\n", sum, name)
	}
	return status
}

// sumOf returns the hex SHA-256 of the file name, or of stdin for "-".
func sumOf(name string, stdin io.Reader) (string, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
