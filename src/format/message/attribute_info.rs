//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct AttributeInfo {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<AttributeInfo> {
    Err(Error::invalid("AttributeInfo", at, "not implemented"))
}
