#![no_main]
use libfuzzer_sys::fuzz_target;

// Whole salvage runs, output to a temporary directory (slow: libhdf5 writes
// a real file per input).
fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("h5salvage-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let input = dir.join("in.h5");
    let output = dir.join("out.h5");
    if std::fs::write(&input, data).is_ok() {
        let _ = h5salvage::salvage::salvage(&input, &output, true);
    }
    let _ = std::fs::remove_file(&output);
});
