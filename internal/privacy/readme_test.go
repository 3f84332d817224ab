package privacy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/billingd/billingd/internal/privacy"
)

// The README's Privacy section names every table of the inventory, so a
// table added with a migration is also explained to the reader, and every
// test the section cites still exists under that name.
func TestReadmePrivacySection(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Privacy\n")
	if !ok {
		t.Fatal("README.md has no Privacy section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	t.Run("EveryTable", func(t *testing.T) {
		for _, tb := range privacy.Tables() {
			// `audit_log.subject_hmac` mentions audit_log too.
			if !strings.Contains(section, "`"+tb.Name+"`") && !strings.Contains(section, "`"+tb.Name+".") {
				t.Errorf("README Privacy section does not mention table `%s`", tb.Name)
			}
		}
	})
	t.Run("CitedTestsExist", func(t *testing.T) {
		var cited int
		for _, name := range testName.FindAllString(section, -1) {
			cited++
			if !testDefined(t, name) {
				t.Errorf("README cites %s, which no _test.go file defines", name)
			}
		}
		if cited == 0 {
			t.Error("README Privacy section cites no test")
		}
	})
}

var testName = regexp.MustCompile(`\bTest[A-Z][A-Za-z0-9_]*`)

// testDefined reports whether some _test.go file under the module root
// defines func name(.
func testDefined(t *testing.T, name string) bool {
	t.Helper()
	found := false
	walk(t, "../..", func(path string, src []byte) {
		if !found && strings.Contains(string(src), "func "+name+"(") {
			found = true
		}
	})
	return found
}

func walk(t *testing.T, dir string, fn func(path string, src []byte)) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := dir + "/" + e.Name()
		switch {
		case e.IsDir() && !strings.HasPrefix(e.Name(), ".") && e.Name() != "testdata" && e.Name() != "node_modules":
			walk(t, p, fn)
		case strings.HasSuffix(e.Name(), "_test.go"):
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			fn(p, src)
		}
	}
}
