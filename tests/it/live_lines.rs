//! JSON-lines streams given directly.
