// Command varde runs a Varde node.
//
//	varde serve --config varde.yaml   run a node
//	varde demo                        run a self-contained demo on localhost
//	varde clients add|list|remove     manage relying parties in the store
//	varde bench                       measure complete logins per second
//	varde version                     print the version
//
// main is the only place that exits; everything else returns errors.
package main
