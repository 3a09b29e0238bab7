//! Account rules with no I/O: what a valid email and password are, and password hashing.

pub mod email;
pub mod password;
