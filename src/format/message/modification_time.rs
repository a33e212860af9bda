//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct ModificationTime {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<ModificationTime> {
    Err(Error::invalid("ModificationTime", at, "not implemented"))
}

pub fn parse_old(_body: &[u8], at: u64, _sizes: Sizes) -> Result<ModificationTime> {
    Err(Error::invalid("ModificationTime", at, "not implemented"))
}
