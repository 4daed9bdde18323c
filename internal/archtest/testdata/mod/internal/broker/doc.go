// This package's doc comment does not start with its name.
package broker

// Level is a policy constant.
const Level = "high"
