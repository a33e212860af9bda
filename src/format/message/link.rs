//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct Link {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<Link> {
    Err(Error::invalid("Link", at, "not implemented"))
}
