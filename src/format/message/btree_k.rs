//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct BtreeK {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<BtreeK> {
    Err(Error::invalid("BtreeK", at, "not implemented"))
}
