// Package repocheck holds tests of the repository as a whole, such as
// every package having a doc comment; it has no code of its own.
package repocheck
