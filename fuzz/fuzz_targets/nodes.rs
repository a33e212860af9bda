#![no_main]
use h5salvage::follow::{self, Image};
use h5salvage::format::{
    btree_v1, btree_v2, cache_image, fractal_heap, global_heap, local_heap, symbol_table_node,
    Sizes,
};
use libfuzzer_sys::fuzz_target;

// B-tree and heap nodes, parsed alone and walked inside the input.
fuzz_target!(|data: &[u8]| {
    let s = Sizes::DEFAULT;
    let _ = btree_v1::parse(data, 0, s, None);
    let _ = btree_v1::parse(data, 0, s, Some(2));
    let _ = symbol_table_node::parse(data, 0, s);
    let _ = local_heap::parse(data, 0, s);
    let _ = global_heap::parse(data, 0, s);
    let _ = fractal_heap::parse_header(data, 0, s);
    let _ = btree_v2::parse_header(data, 0, s);
    let _ = cache_image::parse(data, 0, s);
    let image = Image::new(data, 0, s);
    let _ = follow::btree_v1::collect_chunks(&image, 0, 2);
    let _ = follow::btree_v1::collect_group_leaves(&image, 0);
    let _ = follow::btree_v2::collect_records(&image, 0, Default::default());
});
