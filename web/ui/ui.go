// Package ui holds the look every groupgate page shares: one layout and
// one stylesheet, embedded so the binary needs no assets on disk. The login
// pages (package web) and the admin console (package admin) both build
// their pages with Parse, so a person moving from the provider picker to
// the admin console sees one product.
package ui

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
)

//go:embed layout.html style.css
var files embed.FS

// Parse returns a page template made of the shared layout and the named
// files of pages (each defines "content" and may define "nav" and
// "head"). Execute it with ExecuteTemplate(w, "layout", data); data must
// have a Title field.
func Parse(pages fs.FS, funcs template.FuncMap, names ...string) (*template.Template, error) {
	t := template.New("layout").Funcs(template.FuncMap{"stylesheet": Stylesheet})
	if funcs != nil {
		t = t.Funcs(funcs)
	}
	t, err := t.ParseFS(files, "layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse shared layout: %w", err)
	}
	if t, err = t.ParseFS(pages, names...); err != nil {
		return nil, fmt.Errorf("parse pages %v: %w", names, err)
	}
	return t, nil
}

// Stylesheet is the shared CSS. It is inlined into every page because the
// Content-Security-Policy allows inline styles and nothing else, which
// keeps pages to one request and the policy free of a static path.
func Stylesheet() template.CSS {
	b, err := files.ReadFile("style.css")
	if err != nil {
		// The file is embedded at build time; a miss is a build defect.
		panic(fmt.Sprintf("ui: embedded stylesheet missing: %v", err))
	}
	return template.CSS(b)
}
