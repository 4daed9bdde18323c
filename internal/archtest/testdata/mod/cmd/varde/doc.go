// Command varde may pass os.Getenv to config.Load, and nothing more.
package main
