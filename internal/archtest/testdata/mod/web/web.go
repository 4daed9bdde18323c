// Package web has its doc comment outside doc.go.
package web
