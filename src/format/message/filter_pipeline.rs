//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct FilterPipeline {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<FilterPipeline> {
    Err(Error::invalid("FilterPipeline", at, "not implemented"))
}
