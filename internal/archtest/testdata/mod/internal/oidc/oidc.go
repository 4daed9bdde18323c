package oidc

import "example.com/m/internal/session"

// Cookie is named by the session package: a protocol package importing
// a policy package, and the package has no doc comment.
const Cookie = session.Name
