//! A local heap's data segment (spec III.D), read through the file image.
//! The heap header is parsed by [`crate::format::local_heap`].

use super::Image;
use crate::format::local_heap::*;
use crate::format::Result;

impl LocalHeap {
    /// The data segment (`data_size` bytes at `data_address`), read through
    /// the bounded [`Image`].
    pub fn data_segment<'a>(&self, image: &Image<'a>) -> Result<&'a [u8]> {
        image.slice(STRUCTURE, self.data_address, self.data_size)
    }
}
