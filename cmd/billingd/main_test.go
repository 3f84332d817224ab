package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the binary billingdBinary built (about 20 MB per run,
// left in the temporary directory otherwise).
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
