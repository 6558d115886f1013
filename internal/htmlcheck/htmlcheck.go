// Package htmlcheck checks the pages tpwatch writes (the HTML report, the
// daemon's status page) the way a strict reader would, for the tests of
// the packages that write and serve them.
package htmlcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/html"
)

// void elements have no end tag.
var void = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
	"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}

// svgSelfClosing are the SVG elements the pages close with "/>", which
// is valid inside <svg> only.
var svgSelfClosing = map[string]bool{"rect": true, "line": true, "path": true, "circle": true}

// Check returns what is wrong with page, or nil: it must be well-formed
// HTML that a browser reads without error recovery (every element closed
// in order but the void ones; the tokenizer drops a repeated attribute
// before it can be seen, tidy -errors finds those), and self-contained and
// inert (no script, style sheet, image, frame or form element, no event
// handler attribute, no link with a scheme, nothing loaded from the style
// sheet). The html package's parser repairs anything, so Check walks its
// tokenizer's tokens instead.
func Check(page []byte) error {
	var errs []error
	add := func(format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	z := html.NewTokenizer(bytes.NewReader(page))
	var stack []string
	inSVG := 0
	for {
		tt := z.Next()
		tok := z.Token()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				add("tokenizer: %v", z.Err())
			} else if len(stack) > 0 {
				add("elements left open at the end: %v", stack)
			}
			return errors.Join(errs...)
		case html.StartTagToken, html.SelfClosingTagToken:
			for _, a := range tok.Attr {
				if strings.HasPrefix(a.Key, "on") {
					add("<%s> has an event handler %s=%q", tok.Data, a.Key, a.Val)
				}
				if (a.Key == "href" || a.Key == "src" || a.Key == "action" || a.Key == "xlink:href") && strings.Contains(a.Val, ":") {
					add("<%s %s=%q> points elsewhere: the page must be self-contained", tok.Data, a.Key, a.Val)
				}
			}
			switch tok.Data {
			case "script", "link", "img", "iframe", "object", "embed", "base", "form", "frame", "audio", "video":
				add("<%s> element: the page loads and runs nothing", tok.Data)
			}
			if tt == html.SelfClosingTagToken {
				if !(inSVG > 0 && svgSelfClosing[tok.Data]) && !void[tok.Data] {
					add("<%s/> closes itself, which HTML ignores", tok.Data)
				}
				continue
			}
			if !void[tok.Data] {
				stack = append(stack, tok.Data)
				if tok.Data == "svg" {
					inSVG++
				}
			}
		case html.EndTagToken:
			if len(stack) == 0 || stack[len(stack)-1] != tok.Data {
				add("</%s> closes nothing open (open: %v)", tok.Data, stack)
				return errors.Join(errs...)
			}
			stack = stack[:len(stack)-1]
			if tok.Data == "svg" {
				inSVG--
			}
		case html.TextToken:
			if len(stack) > 0 && stack[len(stack)-1] == "style" && (strings.Contains(tok.Data, "url(") || strings.Contains(tok.Data, "@import")) {
				add("the style sheet loads something")
			}
		}
	}
}
