//! Account rules with no I/O: what a valid email and password are, password hashing,
//! and when repeated failures lock an email's sign-in.

pub mod email;
pub mod lockout;
pub mod password;
