#![no_main]
use h5salvage::follow::{self, Image};
use h5salvage::format::{object_header, Sizes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = object_header::parse_header(data, 0, Sizes::DEFAULT);
    let _ = object_header::looks_like_v1_header(data);
    // Continuations chased inside the input itself.
    let _ = follow::object_header::read_all_messages(&Image::new(data, 0, Sizes::DEFAULT), 0);
});
