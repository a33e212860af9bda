//! Dense link and attribute storage (spec IV.A.2.c "Link Info Message",
//! IV.A.2.w "Attribute Info Message"): the v2 B-tree name index gives heap
//! IDs, each resolved in the fractal heap into the bytes of one link or
//! attribute message. Shared by the link walk of groups and the attribute
//! reading of every object.

use super::Image;
use crate::format::btree_v2::{self, Record};
use crate::format::fractal_heap::{self, HeapId};
use crate::inventory::{Problem, ProblemKind};

/// One object of a dense store: absolute offset for messages, its bytes,
/// and its creation order where the index record has one (attributes).
pub type DenseObject = (u64, Vec<u8>, Option<u64>);

/// The objects of a dense link or attribute store: the v2 B-tree name index
/// gives heap IDs, each resolved in the fractal heap. Returns (absolute
/// offset for messages, object bytes, creation order where the record has
/// one: attributes) in name-index order.
pub fn dense_objects(
    image: &Image,
    heap_addr: u64,
    btree_addr: u64,
) -> (Vec<DenseObject>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let at = image.base.saturating_add(heap_addr);
    let header = match image
        .at("FRHP", heap_addr)
        .and_then(|d| fractal_heap::parse_header(d, at, image.sizes))
    {
        Ok(h) => h,
        Err(e) => {
            problems.push(e.into());
            return (out, problems);
        }
    };
    if header.checksum_ok {
        image.known("FRHP", heap_addr, header.size);
    } else {
        problems.push(Problem::new(
            ProblemKind::Checksum,
            Some(at),
            "FRHP",
            "checksum mismatch",
        ));
    }
    let (_, records, errs) =
        super::btree_v2::collect_records(image, btree_addr, btree_v2::RecordContext::default());
    problems.extend(errs.into_iter().map(Problem::from));
    // Huge objects (above the heap's managed-object size): read only when
    // some record names one.
    let mut huge: Option<std::collections::HashMap<u64, super::fractal_heap::HugePlace>> = None;
    for (i, r) in records.into_iter().enumerate() {
        // In name order, the heap's blocks are read all over the file.
        if i > 0 {
            image.release();
        }
        let (id, order): (&[u8], _) = match &r {
            Record::LinkName { heap_id, .. } => (heap_id, None),
            Record::AttributeName {
                heap_id,
                creation_order,
                ..
            } => (heap_id, Some(u64::from(*creation_order))),
            _ => continue,
        };
        let resolved = fractal_heap::parse_heap_id(id, at, &header).and_then(|hid| match hid {
            HeapId::Managed { offset, length } => {
                super::fractal_heap::read_managed_object(image, heap_addr, &header, offset, length)
            }
            HeapId::Tiny { data } => Ok(data),
            HeapId::Huge(id) => {
                let index = huge.get_or_insert_with(|| {
                    let (index, errs) = super::fractal_heap::huge_object_index(image, &header);
                    problems.extend(errs.into_iter().map(Problem::from));
                    index
                });
                super::fractal_heap::read_huge_object(image, at, &header, &id, index)
            }
        });
        match resolved {
            Ok(bytes) => out.push((at, bytes, order)),
            Err(e) => {
                // One damaged block fails every object in it: say it once.
                let p = Problem::from(e);
                if !problems.contains(&p) {
                    problems.push(p);
                }
            }
        }
    }
    (out, problems)
}
