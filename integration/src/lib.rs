//! Network-namespace lab helpers.
