//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct Comment {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<Comment> {
    Err(Error::invalid("Comment", at, "not implemented"))
}
