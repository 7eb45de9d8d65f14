//go:build mutation

package conn

// Built with -tags mutation (scripts/mutation --conn), the package's tests
// leave out the ones that prove a check catches a deliberately broken
// adapter ("Catches"): they test the checks, not the code a mutant
// changes, and they are the slowest (each shrinks a counterexample). The
// rest run against every mutant.
func init() { testSkip = "Catches" }
