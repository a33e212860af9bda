//! The mappings of a virtual dataset (spec IV.A.2.i, data layout class 3:
//! a global heap ID naming the mapping block of spec III.F, parsed in
//! [`crate::format::vds`]). The data stays in the source files: only the
//! mappings are read, to be written again.

use crate::follow::Image;
use crate::format::global_heap;
use crate::format::message::data_layout::LayoutClass;
use crate::format::vds::{self, VirtualMapping};
use crate::inventory::{Problem, ProblemKind};

/// The mappings of a virtual layout; a problem naming the heap object when
/// it cannot be read or fails its checksum. `None` for other layouts.
pub fn mappings(
    image: &Image,
    layout: &LayoutClass,
) -> Option<Result<Vec<VirtualMapping>, Problem>> {
    let LayoutClass::Virtual {
        heap_address,
        index,
    } = *layout
    else {
        return None;
    };
    Some(read(image, heap_address, index))
}

fn read(image: &Image, heap: u64, index: u32) -> Result<Vec<VirtualMapping>, Problem> {
    let data = image.at("global heap collection", heap)?;
    let abs = image.absolute(heap).unwrap_or(heap);
    let coll = global_heap::parse(data, abs, image.sizes)?;
    let object = u16::try_from(index)
        .ok()
        .and_then(|i| coll.object(image.bytes, i))
        .ok_or_else(|| {
            Problem::new(
                ProblemKind::Unreadable,
                Some(abs),
                "virtual dataset mapping",
                format!("global heap object {index} not in the collection"),
            )
        })?;
    let at = coll
        .objects
        .iter()
        .find(|o| u32::from(o.index) == index)
        .map_or(abs, |o| o.data_offset);
    Ok(vds::parse(object, at, image.sizes)?)
}
