// Package trace is the neutral record of a lifeline run: what the
// lifecycles did (fsm transitions) and the facts around them that the
// invariants need (attempts started, links up and down, sends, peer deaths,
// the registry). The simulator in package sim produces records; a real
// adapter run under testing/synctest can produce the same ones, and the
// checkers in package invariant consume them without knowing which.
//
// A Record is a small fixed-size value with no pointers: producing one
// costs no allocation and no formatting. Text is made only on output
// (AppendText, Write), so a trace can be kept for a whole run and rendered
// only when a property fails or a user asks for a file.
package trace
