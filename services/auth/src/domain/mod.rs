//! Account rules with no I/O: what a valid email and password are, password hashing,
//! when repeated failures lock an email's sign-in, and password-reset tokens.

pub mod email;
pub mod lockout;
pub mod password;
pub mod reset;
