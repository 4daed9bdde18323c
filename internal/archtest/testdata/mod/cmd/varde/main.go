package main

import (
	"os"

	"example.com/m/internal/config"
)

func main() {
	_ = config.Load(os.Getenv)
	_ = config.LoadEnviron(os.Environ)
	_ = os.Getenv("HOME")
}
