package session

import "os"

// Name is read from the environment, which only config may do.
var Name = os.Getenv("SESSION_NAME")
