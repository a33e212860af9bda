//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct Dataspace {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<Dataspace> {
    Err(Error::invalid("Dataspace", at, "not implemented"))
}
