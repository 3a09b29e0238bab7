//! Whole-stack tests only (tests/pages): the web client in front of the real services.
//! Empty library: cargo needs a target besides the tests.
