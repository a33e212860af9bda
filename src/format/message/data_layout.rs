//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct DataLayout {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<DataLayout> {
    Err(Error::invalid("DataLayout", at, "not implemented"))
}
