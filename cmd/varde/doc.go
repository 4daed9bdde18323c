// Command varde runs a Varde node.
//
//	varde serve --config varde.yaml   run a node
//	varde config check --config FILE  check a configuration and every key and secret file it names
//	varde demo                        run a self-contained demo on localhost
//	varde clients add|list|remove     manage relying parties in the store
//	varde upstream jwks ID            print the client keys to register at an eID
//	varde persons show|block|unblock  the help desk: look a person up, block their Varde ID, lift it
//	varde persons add-number          the help desk: a person's national number changed; keep them one person
//	varde persons export              the help desk: everything Varde holds about a person, for their access request
//	varde bench                       measure complete passkey logins per second
//	varde provider-sim                run a simulated national eID (demos, tests)
//	varde provider fault              switch a simulated eID down, slow or failing
//	varde resilience                  kill, slow and restart simulated eIDs under logins; measure failover
//	varde resilience --nodes          kill and restart one of two nodes over PostgreSQL under logins
//	varde version                     print the version
//
// main is the only place that exits; everything else returns errors.
package main
