#![no_main]
use h5salvage::format::{message, Sizes};
use libfuzzer_sys::fuzz_target;

// First two bytes: message type and flags; the rest is the body.
fuzz_target!(|data: &[u8]| {
    if let [kind, flags, body @ ..] = data {
        let _ = message::parse(u16::from(*kind & 0x1f), *flags, body, 0, Sizes::DEFAULT);
    }
});
