// Package web holds the finance dashboard's assets, embedded in the binary
// so the dashboard works offline and needs no CDN: a page shell, one
// stylesheet and a few small vanilla-JavaScript modules that fetch the
// /v1/metrics endpoints and draw the charts as SVG.
package web

import "embed"

// Static is the dashboard's files: static/dashboard.html, static/login.html,
// static/app.css and the JavaScript modules static/*.js.
//
//go:embed static
var Static embed.FS
