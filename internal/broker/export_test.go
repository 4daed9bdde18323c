package broker

// LinkCSRF is the link form's token for the browser of r, as a page the
// account page does not offer the form on would still let a person (or
// a forger) post it.
var LinkCSRF = linkCSRF
