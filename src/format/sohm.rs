//! Shared object header messages (spec III.I, "Disk Format: Level 1I -
//! Shared Object Header Message Table", and IV.A.2.p, "The Shared Message
//! Table Message"): a file may keep dataspace, datatype, fill value, filter
//! pipeline and attribute messages once, in fractal heaps, and have object
//! headers point at them (a version 3 shared message of type 1, holding a
//! fractal heap ID). The superblock extension's shared message table
//! message names the table (`SMTB`), which lists, per index, the message
//! types it holds and the fractal heap they are stored in. Only the heaps
//! are needed to resolve a shared message; the indexes (lists or v2
//! B-trees) only speed up the library's search for duplicates.

use super::{expect_signature, uint, verify_checksum, Error, Result, Sizes};

pub const STRUCTURE: &str = "shared message table";

/// The table signature (spec III.I).
pub const SIGNATURE: &[u8; 4] = b"SMTB";

/// Most indexes a table may have (`H5O_SHMESG_MAX_NINDEXES`).
pub const MAX_INDEXES: usize = 8;

/// Per index of the table: the message types it holds (bit `1 << type`)
/// and the address of its fractal heap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SharedHeaps {
    count: usize,
    entries: [(u16, u64); MAX_INDEXES],
}

impl SharedHeaps {
    /// The heap holding shared messages of type `message_kind`.
    pub fn heap_for(&self, message_kind: u16) -> Option<u64> {
        let bit = 1u16.checked_shl(u32::from(message_kind))?;
        self.entries[..self.count]
            .iter()
            .find(|(flags, _)| flags & bit != 0)
            .map(|(_, heap)| *heap)
    }
}

/// Parses the body of a shared message table message (spec IV.A.2.p),
/// at absolute offset `at`: the address of the table (`SMTB`) and its
/// number of indexes.
pub fn parse_message(body: &[u8], at: u64, sizes: Sizes) -> Result<(u64, usize)> {
    let o = usize::from(sizes.offset());
    if body.len() < 2 + o || body[0] != 0 {
        return Err(Error::invalid(STRUCTURE, at, "message version or size"));
    }
    let table = field(&body[1..], sizes.offset(), at)?;
    let count = usize::from(body[1 + o]);
    if count > MAX_INDEXES {
        return Err(Error::bad_value(STRUCTURE, at, "index count", count as u64));
    }
    Ok((table, count))
}

/// Parses `SMTB` with `count` indexes at the start of `data` (absolute
/// offset `at`), checksum verified.
pub fn parse_table(data: &[u8], at: u64, count: usize, sizes: Sizes) -> Result<SharedHeaps> {
    expect_signature(STRUCTURE, at, data, SIGNATURE)?;
    let o = usize::from(sizes.offset());
    let each = 14 + 2 * o;
    let len = 4 + count * each;
    verify_checksum(STRUCTURE, at, data, len)?;
    let mut heaps = SharedHeaps::default();
    for i in 0..count {
        let e = &data[4 + i * each..4 + (i + 1) * each];
        let here = at + (4 + i * each) as u64;
        if e[0] != 0 {
            return Err(Error::bad_value(
                STRUCTURE,
                here,
                "index version",
                e[0].into(),
            ));
        }
        let flags = u16::from_le_bytes([e[2], e[3]]);
        let heap = field(&e[14 + o..], sizes.offset(), here)?;
        heaps.entries[i] = (flags, heap);
    }
    heaps.count = count;
    Ok(heaps)
}

fn field(data: &[u8], width: u8, at: u64) -> Result<u64> {
    uint(width)(data)
        .map(|(_, v)| v)
        .map_err(|_| Error::invalid(STRUCTURE, at, "address cut short"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::lookup3;
    use crate::format::message::kind;

    /// The table HDF5 2.0 wrote for two indexes: dataspace + datatype
    /// (flags 0x000a) in the heap at 0x5aa; fill value, filter pipeline
    /// and attribute (0x1820) in the heap at 0x996.
    fn table() -> Vec<u8> {
        let mut v = b"SMTB".to_vec();
        for (flags, index, heap) in [(0x000au16, 0x250u64, 0x5aau64), (0x1820, 0x63c, 0x996)] {
            v.extend([0, 0]);
            v.extend(flags.to_le_bytes());
            v.extend(1u32.to_le_bytes());
            v.extend([0x32, 0, 0x28, 0, 6, 0]);
            v.extend(index.to_le_bytes());
            v.extend(heap.to_le_bytes());
        }
        let sum = lookup3::hashlittle(&v, 0);
        v.extend(sum.to_le_bytes());
        v
    }

    #[test]
    fn heaps_by_message_type() {
        let t = parse_table(&table(), 0x61, 2, Sizes::DEFAULT).unwrap();
        assert_eq!(t.heap_for(kind::DATASPACE), Some(0x5aa));
        assert_eq!(t.heap_for(kind::DATATYPE), Some(0x5aa));
        assert_eq!(t.heap_for(kind::FILL_VALUE), Some(0x996));
        assert_eq!(t.heap_for(kind::ATTRIBUTE), Some(0x996));
        assert_eq!(t.heap_for(kind::LINK), None);
        assert_eq!(t.heap_for(200), None);
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let good = table();
        for n in 0..good.len() {
            assert!(
                parse_table(&good[..n], 0, 2, Sizes::DEFAULT).is_err(),
                "{n}"
            );
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 1;
            assert!(parse_table(&bad, 0, 2, Sizes::DEFAULT).is_err(), "{i}");
        }
        assert!(parse_table(&good, 0, 3, Sizes::DEFAULT).is_err());
    }
}
