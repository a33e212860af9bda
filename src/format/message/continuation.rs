//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct Continuation {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<Continuation> {
    Err(Error::invalid("Continuation", at, "not implemented"))
}
