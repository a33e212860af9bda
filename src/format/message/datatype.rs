//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct Datatype {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<Datatype> {
    Err(Error::invalid("Datatype", at, "not implemented"))
}
