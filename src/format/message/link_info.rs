//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct LinkInfo {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<LinkInfo> {
    Err(Error::invalid("LinkInfo", at, "not implemented"))
}
