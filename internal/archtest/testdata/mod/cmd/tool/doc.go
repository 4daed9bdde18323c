// Command tool reads the environment under another name.
package main
