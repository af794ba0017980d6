package testguest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
)

// HashSources names a build by what goes into it: the recipe's words
// (compiler flags, a format version) and every file under dir in fsys,
// path, length and bytes. The test guests and the lessons cache their
// builds in folders named by it, so any change to either rebuilds.
func HashSources(fsys fs.ReadFileFS, dir string, recipe ...string) (string, error) {
	h := sha256.New()
	for _, r := range recipe {
		fmt.Fprintf(h, "%q\n", r)
	}
	err := fs.WalkDir(fsys, dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fsys.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hashing the sources under %s: %w", dir, err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
