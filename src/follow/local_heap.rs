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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::Image;
    use crate::format::test_support::fixtures;
    use crate::format::test_support::hex;
    use crate::format::Sizes;

    /// The root group's local heap (header + 88-byte data segment) of a file
    /// written by h5py 3.16 / HDF5 2.0 with the default libver, at offset 680
    /// (see `tests` in symbol_table_node.rs for the generator).
    const H5PY_HEAP_680: &str = "\
484541500000000058000000000000001800000000000000c80200000000000000000000\
000000006772700000000000767300000000000001000000000000004000000000000000\
000000000000000000000000000000000000000000000000000000000000000000000000\
000000000000000000000000";

    #[test]
    fn h5py_root_heap() {
        let bytes = hex(H5PY_HEAP_680);
        let h = parse(&bytes, 680, Sizes::DEFAULT).unwrap();
        assert_eq!(h.data_size, 88);
        assert_eq!(h.free_list_offset, 24);
        assert_eq!(h.data_address, 712);
        // The data segment follows the header here; read it through an Image.
        let mut file = vec![0u8; 680];
        file.extend_from_slice(&bytes);
        let img = Image::new(&file, 0, Sizes::DEFAULT);
        let seg = h.data_segment(&img).unwrap();
        assert_eq!(name_at(seg, 8), Some(&b"grp"[..]));
        assert_eq!(name_at(seg, 16), Some(&b"vs"[..]));
        assert_eq!(
            validate_free_list(seg, h.free_list_offset, Sizes::DEFAULT),
            Ok(())
        );
    }

    #[test]
    fn testdata_fixtures_heaps_parse() {
        for (name, bytes, base) in fixtures() {
            let img = Image::new(&bytes, base, Sizes::DEFAULT);
            for at in memchr::memmem::find_iter(&bytes, SIGNATURE) {
                let h = parse(&bytes[at..], at as u64, Sizes::DEFAULT).unwrap();
                let seg = h.data_segment(&img).unwrap();
                let free = validate_free_list(seg, h.free_list_offset, Sizes::DEFAULT);
                assert_eq!(free, Ok(()), "{name} HEAP at {at}");
            }
        }
    }
}
