//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct FillValue {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<FillValue> {
    Err(Error::invalid("FillValue", at, "not implemented"))
}

#[derive(Clone, Debug, PartialEq)]
pub struct FillValueOld {}

pub fn parse_old(_body: &[u8], at: u64, _sizes: Sizes) -> Result<FillValueOld> {
    Err(Error::invalid("FillValueOld", at, "not implemented"))
}
