//! h5salvage: a forensic scanner and salvager for damaged HDF5 files.
//!
//! Stages, each testable alone, talking only through [`inventory::Inventory`]:
//! `format` (bytes -> typed structures; `format::codec` holds the sizes, the
//! reader, checksums and message framing) -> `follow` (chasing addresses
//! through the file image: object headers and continuations, B-trees, chunk
//! listings, heap objects, dense links) -> `walk` (tolerant traversal from
//! the superblock) / `carve` (signature search without a trusted root) ->
//! `pipeline` (opening inputs; walk, carve, combine) -> `inventory` (the
//! shared type and its byte image) -> `read` (dataset bytes, filters) ->
//! `write` (hdf5 crate) -> the jobs `salvage` and `merge` -> `report` (human
//! and JSON).
//!
//! Where a job is done: chunks of a dataset are listed in
//! `follow::chunks`; a checksum is checked in `format::codec`; an
//! object-header message is framed in `format::codec` (`MessageHeader`).

/// An enum whose values are fixed words in the reports: `as_str`,
/// `Display` (padding honoured), `Debug` (quoted, as the `&str` fields they
/// replace showed) and `Serialize` all give the word, so the JSON and the
/// human report cannot disagree, and code matches variants, never words.
macro_rules! word_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The word the reports show.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $word, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

pub mod carve;
pub mod follow;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod inventory;
pub mod merge;
pub mod pipeline;
pub mod progress;
pub mod read;
pub mod report;
pub mod salvage;
pub mod sigbus;
pub mod walk;
pub mod write;

pub use inventory::Inventory;
pub use pipeline::{scan_bytes, scan_path, scan_path_with, CarveMode, Input};

#[cfg(test)]
mod tests {
    use crate::inventory::LinkKind;
    use crate::merge::{InputVerdict, UnitResult};
    use crate::salvage::Recovery;

    /// The word in the JSON, checked to be the word shown.
    fn word<T: serde::Serialize + std::fmt::Display>(v: T) -> String {
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json.as_str(), Some(v.to_string().as_str()));
        v.to_string()
    }

    /// The words of the reports (JSON and text) are the ones they always
    /// were.
    #[test]
    fn word_enums_serialize_and_display_their_words() {
        assert_eq!(word(LinkKind::UserDefined), "user_defined");
        assert_eq!(word(Recovery::Unverified), "unverified");
        assert_eq!(word(UnitResult::SkippedPresent), "skipped (present)");
        assert_eq!(
            word(InputVerdict::SkippedOpen),
            "skipped (open for writing)"
        );
        assert_eq!(format!("{:<8}|", LinkKind::Soft), "soft    |");
        assert_eq!(format!("{:?}", Recovery::Partial), "\"partial\"");
        assert_eq!(InputVerdict::default(), InputVerdict::Nothing);
    }
}
