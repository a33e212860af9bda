//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<Attribute> {
    Err(Error::invalid("Attribute", at, "not implemented"))
}
