//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct SharedMessage {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<SharedMessage> {
    Err(Error::invalid("SharedMessage", at, "not implemented"))
}
