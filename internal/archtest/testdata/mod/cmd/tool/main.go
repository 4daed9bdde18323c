package main

import (
	osx "os"
	"syscall"
)

func main() {
	_ = osx.Environ()
	_, _ = syscall.Getenv("X")
}
