// Package web holds the finance dashboard's assets, embedded in the binary
// so the dashboard works offline and needs no CDN: a page shell, one
// stylesheet and one small vanilla-JavaScript file that fetches the
// /v1/metrics endpoints and draws the charts as SVG.
package web

import "embed"

// Static is the dashboard's files: static/dashboard.html, static/login.html,
// static/app.js and static/app.css.
//
//go:embed static
var Static embed.FS
