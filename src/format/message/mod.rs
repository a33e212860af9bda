//! Object header messages (spec IV.A.2, "Disk Format: Level 2A2 - Data Object
//! Header Messages"), one module per message type.
//!
//! Every parser takes exactly the message body (the bytes inside the declared
//! message size), the body's absolute file offset `at` (for errors) and the
//! file's [`Sizes`]: `parse(body, at, sizes) -> Result<T>`.

use super::{Result, Sizes};

pub mod attribute;
pub mod attribute_info;
pub mod btree_k;
pub mod comment;
pub mod continuation;
pub mod data_layout;
pub mod dataspace;
pub mod datatype;
pub mod fill_value;
pub mod filter_pipeline;
pub mod group_info;
pub mod link;
pub mod link_info;
pub mod modification_time;
pub mod shared;
pub mod symbol_table;

/// Message type numbers (spec IV.A.2.a-y).
pub mod kind {
    pub const NIL: u16 = 0x0000;
    pub const DATASPACE: u16 = 0x0001;
    pub const LINK_INFO: u16 = 0x0002;
    pub const DATATYPE: u16 = 0x0003;
    pub const FILL_VALUE_OLD: u16 = 0x0004;
    pub const FILL_VALUE: u16 = 0x0005;
    pub const LINK: u16 = 0x0006;
    pub const EXTERNAL_FILES: u16 = 0x0007;
    pub const DATA_LAYOUT: u16 = 0x0008;
    pub const BOGUS: u16 = 0x0009;
    pub const GROUP_INFO: u16 = 0x000A;
    pub const FILTER_PIPELINE: u16 = 0x000B;
    pub const ATTRIBUTE: u16 = 0x000C;
    pub const COMMENT: u16 = 0x000D;
    pub const MODIFICATION_TIME_OLD: u16 = 0x000E;
    pub const SHARED_MESSAGE_TABLE: u16 = 0x000F;
    pub const CONTINUATION: u16 = 0x0010;
    pub const SYMBOL_TABLE: u16 = 0x0011;
    pub const MODIFICATION_TIME: u16 = 0x0012;
    pub const BTREE_K: u16 = 0x0013;
    pub const DRIVER_INFO: u16 = 0x0014;
    pub const ATTRIBUTE_INFO: u16 = 0x0015;
    pub const REFERENCE_COUNT: u16 = 0x0016;
    pub const FILE_SPACE_INFO: u16 = 0x0017;
    pub const CACHE_IMAGE: u16 = 0x0018;
    /// Highest message type number the spec defines (0x18, cache image).
    pub const MAX_KNOWN: u16 = 0x0018;
}

/// Human name of a message type, for reports.
pub fn kind_name(kind: u16) -> &'static str {
    match kind {
        kind::NIL => "NIL",
        kind::DATASPACE => "dataspace",
        kind::LINK_INFO => "link info",
        kind::DATATYPE => "datatype",
        kind::FILL_VALUE_OLD => "fill value (old)",
        kind::FILL_VALUE => "fill value",
        kind::LINK => "link",
        kind::EXTERNAL_FILES => "external data files",
        kind::DATA_LAYOUT => "data layout",
        kind::BOGUS => "bogus",
        kind::GROUP_INFO => "group info",
        kind::FILTER_PIPELINE => "filter pipeline",
        kind::ATTRIBUTE => "attribute",
        kind::COMMENT => "object comment",
        kind::MODIFICATION_TIME_OLD => "modification time (old)",
        kind::SHARED_MESSAGE_TABLE => "shared message table",
        kind::CONTINUATION => "object header continuation",
        kind::SYMBOL_TABLE => "symbol table",
        kind::MODIFICATION_TIME => "modification time",
        kind::BTREE_K => "B-tree 'K' values",
        kind::DRIVER_INFO => "driver info",
        kind::ATTRIBUTE_INFO => "attribute info",
        kind::REFERENCE_COUNT => "reference count",
        kind::FILE_SPACE_INFO => "file space info",
        kind::CACHE_IMAGE => "metadata cache image",
        _ => "unknown",
    }
}

/// A decoded message. Types this crate does not interpret are kept raw.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Nil,
    Dataspace(dataspace::Dataspace),
    LinkInfo(link_info::LinkInfo),
    Datatype(datatype::Datatype),
    FillValueOld(fill_value::FillValueOld),
    FillValue(fill_value::FillValue),
    Link(link::Link),
    DataLayout(data_layout::DataLayout),
    GroupInfo(group_info::GroupInfo),
    FilterPipeline(filter_pipeline::FilterPipeline),
    Attribute(attribute::Attribute),
    Comment(comment::Comment),
    ModificationTime(modification_time::ModificationTime),
    Continuation(continuation::Continuation),
    SymbolTable(symbol_table::SymbolTable),
    BtreeK(btree_k::BtreeK),
    AttributeInfo(attribute_info::AttributeInfo),
    /// A shared message (flag bit 1): the body points at the real message.
    Shared(shared::SharedMessage),
    /// Any other type (external files, driver info, reference count, ...),
    /// kept as raw bytes.
    Other {
        kind: u16,
        body: Vec<u8>,
    },
}

/// Header message flag bit 1: the message is shared (spec IV.A.2, message flags).
pub const FLAG_SHARED: u8 = 0x02;

/// Decodes one message body of type `kind` with message flags `flags`.
pub fn parse(kind: u16, flags: u8, body: &[u8], at: u64, sizes: Sizes) -> Result<Message> {
    if flags & FLAG_SHARED != 0 && kind != kind::NIL {
        return shared::parse(body, at, sizes).map(Message::Shared);
    }
    Ok(match kind {
        kind::NIL => Message::Nil,
        kind::DATASPACE => Message::Dataspace(dataspace::parse(body, at, sizes)?),
        kind::LINK_INFO => Message::LinkInfo(link_info::parse(body, at, sizes)?),
        kind::DATATYPE => Message::Datatype(datatype::parse(body, at, sizes)?),
        kind::FILL_VALUE_OLD => Message::FillValueOld(fill_value::parse_old(body, at, sizes)?),
        kind::FILL_VALUE => Message::FillValue(fill_value::parse(body, at, sizes)?),
        kind::LINK => Message::Link(link::parse(body, at, sizes)?),
        kind::DATA_LAYOUT => Message::DataLayout(data_layout::parse(body, at, sizes)?),
        kind::GROUP_INFO => Message::GroupInfo(group_info::parse(body, at, sizes)?),
        kind::FILTER_PIPELINE => Message::FilterPipeline(filter_pipeline::parse(body, at, sizes)?),
        kind::ATTRIBUTE => Message::Attribute(attribute::parse(body, at, sizes)?),
        kind::COMMENT => Message::Comment(comment::parse(body, at, sizes)?),
        kind::MODIFICATION_TIME_OLD => {
            Message::ModificationTime(modification_time::parse_old(body, at, sizes)?)
        }
        kind::MODIFICATION_TIME => {
            Message::ModificationTime(modification_time::parse(body, at, sizes)?)
        }
        kind::CONTINUATION => Message::Continuation(continuation::parse(body, at, sizes)?),
        kind::SYMBOL_TABLE => Message::SymbolTable(symbol_table::parse(body, at, sizes)?),
        kind::BTREE_K => Message::BtreeK(btree_k::parse(body, at, sizes)?),
        kind::ATTRIBUTE_INFO => Message::AttributeInfo(attribute_info::parse(body, at, sizes)?),
        _ => Message::Other {
            kind,
            body: body.to_vec(),
        },
    })
}
