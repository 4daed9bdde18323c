// Package keys is a protocol package that reaches policy indirectly.
package keys

import "example.com/m/internal/helper"

// Level comes from broker through helper.
const Level = helper.Level
