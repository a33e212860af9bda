//! STUB: to be implemented.
