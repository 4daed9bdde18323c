// Package helper imports the broker.
package helper

import "example.com/m/internal/broker"

// Level is the broker's.
const Level = broker.Level
