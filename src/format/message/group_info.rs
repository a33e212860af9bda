//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct GroupInfo {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<GroupInfo> {
    Err(Error::invalid("GroupInfo", at, "not implemented"))
}
