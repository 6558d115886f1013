package htmlcheck

import "testing"

func TestCheck(t *testing.T) {
	for page, ok := range map[string]bool{
		`<!DOCTYPE html><html><head><meta charset="utf-8"><title>x</title></head><body><p>a<br>b</p><svg><rect x="1"/></svg></body></html>`: true,
		`<html><body><p>unclosed</body></html>`:                             false,
		`<html><body><div></p></div></body></html>`:                         false,
		`<html><body><script>alert(1)</script></body></html>`:               false,
		`<html><body><p onclick="x()">a</p></body></html>`:                  false,
		`<html><body><a href="https://example.com/">a</a></body></html>`:    false,
		`<html><body><a href="#rules">a</a></body></html>`:                  true,
		`<html><body><div/></body></html>`:                                  false,
		`<html><head><style>p{background:url(x.png)}</style></head></html>`: false,
	} {
		if err := Check([]byte(page)); (err == nil) != ok {
			t.Errorf("Check(%s) = %v, want ok %v", page, err, ok)
		}
	}
}
