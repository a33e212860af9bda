//! STUB: to be implemented.

use crate::format::{Error, Result, Sizes};

#[derive(Clone, Debug, PartialEq)]
pub struct SymbolTable {}

pub fn parse(_body: &[u8], at: u64, _sizes: Sizes) -> Result<SymbolTable> {
    Err(Error::invalid("SymbolTable", at, "not implemented"))
}
