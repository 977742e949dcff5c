//! Transparent forwarding to upstream resolvers. See lib.rs.
