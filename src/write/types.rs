//! Turning a parsed [`Datatype`] (spec IV.A.2.d) back into a libhdf5
//! datatype, and turning file-layout element bytes into the memory buffer
//! that libhdf5 expects for that datatype.
//!
//! One libhdf5 type serves both as the dataset's (attribute's) type at
//! creation and as the memory type at write time. For types without
//! variable-length parts it is exactly the file type (same size, offsets,
//! byte order, padding), so raw bytes pass through without conversion.
//!
//! Variable-length strings take 8 bytes in memory (`char *`) but a 16-byte
//! slot on disk; when libhdf5 stores a compound holding one, it moves every
//! later member and the compound's end by the difference. So the type is
//! built in its memory shape: each compound member sits at its file offset
//! minus the growth of the members before it, which libhdf5 then expands
//! back to the file layout. Variable-length sequences (`hvl_t`, 16 bytes)
//! and references have the same size in memory and on disk.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::OnceLock;

use hdf5::globals as g;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5t;

use hdf5_sys::h5r::hdset_reg_ref_t;
use hdf5_sys::{h5d, h5p, h5s};

use super::h5::{check, cstr, hid, locked, select_hyperslab, Hid, Kind};
use super::{HeapValues, RegionValue, VlenSlot, WriteError};
use crate::format::message::data_layout::LayoutClass;
use crate::format::message::dataspace::Dataspace;
use crate::format::message::datatype::{
    ByteOrder, CharacterSet, CompoundMember, Datatype, DatatypeClass, Normalization, ReferenceKind,
    StringPadding, VlenKind, MAX_DEPTH,
};
use crate::format::selection::Selection;
use crate::inventory::Dataset;

/// Old-style reference kinds for `H5Rcreate`: `H5R_OBJECT` and
/// `H5R_DATASET_REGION` (0 and 1 in every HDF5 version; hdf5-sys names the
/// variants `H5R_OBJECT1`, `H5R_DATASET_REGION1` when built against HDF5
/// 1.12 or later, as the wheel's static HDF5 is).
const H5R_OBJECT: hdf5_sys::h5r::H5R_type_t =
    // SAFETY: a C enum of c_int; 0 is a declared value in every version.
    unsafe { std::mem::transmute::<std::ffi::c_int, hdf5_sys::h5r::H5R_type_t>(0) };
const H5R_DATASET_REGION: hdf5_sys::h5r::H5R_type_t =
    // SAFETY: as above, 1 is declared in every version.
    unsafe { std::mem::transmute::<std::ffi::c_int, hdf5_sys::h5r::H5R_type_t>(1) };

/// Size of a `char *` (memory form of a variable-length string).
const PTR: usize = std::mem::size_of::<usize>();
/// Size of `hvl_t` (memory form of a variable-length sequence).
const HVL: usize = 2 * std::mem::size_of::<usize>();

/// Most work recreating one region reference may cost libhdf5 (see
/// [`region_cost`]): 2,048 listed blocks, or a regular hyperslab of a
/// million blocks in one dimension (16 MiB serialized).
pub(crate) const MAX_REGION_COST: u64 = 1 << 22;
/// Work all the region references of one output may cost together.
pub(crate) const MAX_REGION_TOTAL: u64 = 1 << 26;

/// A libhdf5 datatype built from a parsed one, with its memory size.
pub(crate) struct Built {
    pub hid: Hid,
    pub mem_size: usize,
}

fn usize_of(v: u64, path: &str, what: &str) -> Result<usize, WriteError> {
    usize::try_from(v)
        .map_err(|_| WriteError::new(path, what, format!("{v} does not fit in usize")))
}

fn too_deep(path: &str) -> WriteError {
    WriteError::new(path, "datatype", "datatype nesting too deep")
}

/// True if the type holds a variable-length part or a reference anywhere,
/// i.e. its bytes cannot be handed to libhdf5 as they are in the file.
pub(crate) fn needs_buffer(dt: &Datatype, depth: u32) -> bool {
    if depth > MAX_DEPTH {
        return true;
    }
    match &dt.class {
        DatatypeClass::VariableLength { .. } | DatatypeClass::Reference { .. } => true,
        DatatypeClass::Compound { members } => {
            members.iter().any(|m| needs_buffer(&m.datatype, depth + 1))
        }
        DatatypeClass::Array { base, .. }
        | DatatypeClass::Enumeration { base, .. }
        | DatatypeClass::Complex { base, .. } => needs_buffer(base, depth + 1),
        _ => false,
    }
}

/// Memory size of one element of `dt` (see the module comment).
pub(crate) fn mem_size(dt: &Datatype, path: &str, depth: u32) -> Result<usize, WriteError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    match &dt.class {
        DatatypeClass::VariableLength { kind, .. } => Ok(match kind {
            VlenKind::String => PTR,
            _ => HVL,
        }),
        DatatypeClass::Compound { members } => Ok(compound_layout(dt, members, path, depth)?.1),
        DatatypeClass::Array { dims, base } => {
            let n = dims
                .iter()
                .try_fold(1usize, |acc, d| acc.checked_mul(*d as usize));
            let b = mem_size(base, path, depth + 1)?;
            n.and_then(|n| n.checked_mul(b))
                .ok_or_else(|| WriteError::new(path, "datatype", "array size overflows"))
        }
        _ => usize_of(u64::from(dt.size), path, "datatype size"),
    }
}

/// Members in their declared order with their memory offsets, and the
/// compound's memory size.
pub(crate) type Layout<'a> = (Vec<(&'a CompoundMember, usize)>, usize);

/// Members in declared order (the datatype message's order, which readers
/// list: spec IV.A.2.d, compound properties) with memory offsets, and the
/// compound's memory size. Memory offsets shrink by the growth of the
/// members stored *before* each one (by byte offset), whatever their order.
pub(crate) fn compound_layout<'a>(
    dt: &Datatype,
    members: &'a [CompoundMember],
    path: &str,
    depth: u32,
) -> Result<Layout<'a>, WriteError> {
    let mut by_offset: Vec<usize> = (0..members.len()).collect();
    by_offset.sort_by_key(|&i| members.get(i).map_or(0, |m| m.offset));
    let mut shrink = 0usize;
    let mut moffs = vec![0usize; members.len()];
    let bad = |what: &str| WriteError::new(path, "compound datatype", what.to_string());
    for i in by_offset {
        let Some(m) = members.get(i) else { continue };
        let foff = usize_of(m.offset, path, "compound member offset")?;
        let moff = foff
            .checked_sub(shrink)
            .ok_or_else(|| bad("members overlap"))?;
        let fsize = usize_of(u64::from(m.datatype.size), path, "member size")?;
        if foff
            .checked_add(fsize)
            .is_none_or(|end| end > dt.size as usize)
        {
            return Err(bad("a member extends past the compound's size"));
        }
        let msize = mem_size(&m.datatype, path, depth + 1)?;
        if msize > fsize && !matches!(m.datatype.class, DatatypeClass::VariableLength { .. }) {
            return Err(bad("member memory size exceeds its file size"));
        }
        shrink = shrink
            .checked_add(fsize.saturating_sub(msize))
            .ok_or_else(|| bad("size overflow"))?;
        if let Some(slot) = moffs.get_mut(i) {
            *slot = moff;
        }
    }
    let total = usize_of(u64::from(dt.size), path, "compound size")?
        .checked_sub(shrink)
        .ok_or_else(|| bad("members extend past the compound's size"))?;
    Ok((members.iter().zip(moffs).collect(), total))
}

/// The linked libhdf5's version (`H5get_libversion`), asked once.
pub(crate) fn libversion() -> (u32, u32, u32) {
    static V: OnceLock<(u32, u32, u32)> = OnceLock::new();
    *V.get_or_init(|| {
        let (mut a, mut b, mut c) = (0, 0, 0);
        let rc = locked(|| unsafe { hdf5_sys::h5::H5get_libversion(&mut a, &mut b, &mut c) });
        if rc < 0 {
            (0, 0, 0)
        } else {
            (a, b, c)
        }
    })
}

/// `H5Tcomplex_create` (HDF5 2.0 and later).
type ComplexCreate = unsafe extern "C" fn(hid_t) -> hid_t;

#[cfg(feature = "static-hdf5")]
extern "C" {
    /// In the HDF5 (2.x) the wheel compiles and links statically.
    fn H5Tcomplex_create(base_type_id: hid_t) -> hid_t;
}

/// The address of `name` in the shared object holding the libhdf5 we are
/// linked with (the one `H5get_libversion` resolves to), or `None`. Not a
/// global look-up (`RTLD_DEFAULT`): our libhdf5 may be loaded
/// `RTLD_LOCAL` (inside a Python extension), where that finds nothing, or
/// another copy of libhdf5 may be global, whose functions know none of our
/// ids. The symbol found must lie in that same object: a handle's look-up
/// also searches the object's dependencies (libc has `malloc`).
#[cfg(not(feature = "static-hdf5"))]
fn hdf5_symbol(name: &std::ffi::CStr) -> Option<*mut c_void> {
    /// The base address of the object holding `addr`, if any.
    fn object(addr: *const c_void) -> Option<(*mut c_void, *const libc::c_char)> {
        // SAFETY: dladdr only reads `addr` as a number and fills `info`.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        let found = unsafe { libc::dladdr(addr, &mut info) } != 0;
        (found && !info.dli_fname.is_null() && !info.dli_fbase.is_null())
            .then_some((info.dli_fbase, info.dli_fname))
    }
    let anchor = hdf5_sys::h5::H5get_libversion as *const c_void;
    let (base, path) = object(anchor)?;
    // SAFETY: `path` is dladdr's NUL-terminated name of a loaded object;
    // RTLD_NOLOAD only returns a handle if it is loaded (never loads it),
    // and the handle is closed after the one look-up.
    let handle = unsafe { libc::dlopen(path, libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
    if handle.is_null() {
        return None;
    }
    let f = unsafe { libc::dlsym(handle, name.as_ptr()) };
    unsafe { libc::dlclose(handle) };
    (!f.is_null() && object(f).map(|(b, _)| b) == Some(base)).then_some(f)
}

/// `H5Tcomplex_create` of the linked libhdf5, if it has one (2.0 and
/// later). The command line links the system's shared libhdf5, 1.10 on
/// Debian, which lacks it: the symbol is looked up at run time in that
/// libhdf5 (`hdf5_symbol`), so that the binary links against either. The
/// wheel's static HDF5 is 2.x.
fn complex_create() -> Option<ComplexCreate> {
    static F: OnceLock<Option<ComplexCreate>> = OnceLock::new();
    *F.get_or_init(|| {
        if libversion() < (2, 0, 0) {
            return None;
        }
        #[cfg(feature = "static-hdf5")]
        {
            Some(H5Tcomplex_create as ComplexCreate)
        }
        #[cfg(not(feature = "static-hdf5"))]
        {
            // SAFETY: the symbol is our libhdf5's (2.x, checked above)
            // `hid_t H5Tcomplex_create(hid_t)` (H5Tpublic.h).
            hdf5_symbol(c"H5Tcomplex_create")
                .map(|f| unsafe { std::mem::transmute::<*mut c_void, ComplexCreate>(f) })
        }
    })
}

/// True if `dt` holds the complex class (HDF5 2.0) anywhere.
pub(crate) fn contains_complex(dt: &Datatype, depth: u32) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match &dt.class {
        DatatypeClass::Complex { .. } => true,
        DatatypeClass::Compound { members } => members
            .iter()
            .any(|m| contains_complex(&m.datatype, depth + 1)),
        DatatypeClass::Array { base, .. }
        | DatatypeClass::Enumeration { base, .. }
        | DatatypeClass::VariableLength { base, .. } => contains_complex(base, depth + 1),
        _ => false,
    }
}

/// True if `dt` holds the complex class and the linked libhdf5 writes it
/// as such: its datatype message (version 5, HDF5 2.0) needs the latest
/// formats allowed while it is stored.
pub(crate) fn native_complex(dt: &Datatype) -> bool {
    complex_create().is_some() && contains_complex(dt, 0)
}

/// What the output says where a complex type (HDF5 2.0) was written as
/// h5py's `{r, i}` compound because the linked libhdf5 cannot write the
/// class; `None` where nothing was substituted. The bytes are the same
/// (real part, then imaginary part, each of the base type: spec IV.A.2.d,
/// class 11, rectangular form); h5py reads such a compound as complex.
pub(crate) fn complex_substitute_note(dt: &Datatype) -> Option<String> {
    if !contains_complex(dt, 0) || complex_create().is_some() {
        return None;
    }
    let (a, b, c) = libversion();
    Some(format!(
        "HDF5 complex class written as h5py's {{r, i}} compound: linked libhdf5 {a}.{b}.{c} \
         cannot write the complex class"
    ))
}

/// A complex type (spec IV.A.2.d, class 11): the native class where the
/// linked libhdf5 has it, else h5py's compound `{r: base, i: base}`,
/// whose bytes are the same. Only the homogeneous rectangular form exists
/// in HDF5 2.0.
fn complex(
    dt: &Datatype,
    homogeneous: bool,
    form: u8,
    base: &Datatype,
    path: &str,
    depth: u32,
) -> Result<Hid, WriteError> {
    if !homogeneous || form != 0 || !matches!(base.class, DatatypeClass::FloatingPoint { .. }) {
        return Err(WriteError::new(
            path,
            "datatype",
            format!(
                "a complex type of form {form}{} over {} is not supported by the writer \
                 (HDF5 2.0 defines the homogeneous rectangular form of floats only)",
                if homogeneous { "" } else { ", not homogeneous" },
                base.describe()
            ),
        ));
    }
    let part = usize_of(u64::from(base.size), path, "complex part size")?;
    if part.checked_mul(2) != Some(dt.size as usize) {
        return Err(WriteError::new(
            path,
            "complex datatype",
            format!("size {} is not twice its base's {part}", dt.size),
        ));
    }
    let b = build(base, path, depth + 1)?;
    if let Some(create) = complex_create() {
        return hid(
            locked(|| unsafe { create(b.hid.id()) }),
            Kind::Datatype,
            path,
            "H5Tcomplex_create",
        );
    }
    let t = hid(
        locked(|| unsafe { h5t::H5Tcreate(h5t::H5T_class_t::H5T_COMPOUND, 2 * part) }),
        Kind::Datatype,
        path,
        "H5Tcreate(compound for complex)",
    )?;
    for (name, off) in [(c"r", 0), (c"i", part)] {
        locked(|| unsafe {
            check(
                h5t::H5Tinsert(t.id(), name.as_ptr(), off, b.hid.id()),
                path,
                "H5Tinsert(complex part)",
            )
        })?;
    }
    Ok(t)
}

fn copy_of(base: hid_t, path: &str) -> Result<Hid, WriteError> {
    hid(
        locked(|| unsafe { h5t::H5Tcopy(base) }),
        Kind::Datatype,
        path,
        "H5Tcopy",
    )
}

fn order_of(o: ByteOrder) -> h5t::H5T_order_t {
    match o {
        ByteOrder::LittleEndian => h5t::H5T_order_t::H5T_ORDER_LE,
        ByteOrder::BigEndian => h5t::H5T_order_t::H5T_ORDER_BE,
        ByteOrder::Vax => h5t::H5T_order_t::H5T_ORDER_VAX,
    }
}

fn pad_of(one: bool) -> h5t::H5T_pad_t {
    if one {
        h5t::H5T_pad_t::H5T_PAD_ONE
    } else {
        h5t::H5T_pad_t::H5T_PAD_ZERO
    }
}

fn strpad_of(p: StringPadding, path: &str) -> Result<h5t::H5T_str_t, WriteError> {
    match p {
        StringPadding::NullTerminate => Ok(h5t::H5T_str_t::H5T_STR_NULLTERM),
        StringPadding::NullPad => Ok(h5t::H5T_str_t::H5T_STR_NULLPAD),
        StringPadding::SpacePad => Ok(h5t::H5T_str_t::H5T_STR_SPACEPAD),
        StringPadding::Reserved(v) => Err(WriteError::new(
            path,
            "string datatype",
            format!("reserved padding type {v}"),
        )),
    }
}

fn cset_of(c: CharacterSet, path: &str) -> Result<h5t::H5T_cset_t, WriteError> {
    match c {
        CharacterSet::Ascii => Ok(h5t::H5T_cset_t::H5T_CSET_ASCII),
        CharacterSet::Utf8 => Ok(h5t::H5T_cset_t::H5T_CSET_UTF8),
        CharacterSet::Reserved(v) => Err(WriteError::new(
            path,
            "string datatype",
            format!("reserved character set {v}"),
        )),
    }
}

/// Sets size, precision and bit offset of an integer-like atomic type.
fn set_bits(
    t: hid_t,
    size: usize,
    offset: u16,
    precision: u16,
    path: &str,
) -> Result<(), WriteError> {
    locked(|| unsafe {
        check(h5t::H5Tset_size(t, size), path, "H5Tset_size")?;
        check(h5t::H5Tset_offset(t, 0), path, "H5Tset_offset")?;
        check(
            h5t::H5Tset_precision(t, usize::from(precision)),
            path,
            "H5Tset_precision",
        )?;
        check(
            h5t::H5Tset_offset(t, usize::from(offset)),
            path,
            "H5Tset_offset",
        )?;
        Ok(())
    })
}

/// Builds the libhdf5 type for `dt` (in its memory shape, see the module
/// comment).
pub(crate) fn build(dt: &Datatype, path: &str, depth: u32) -> Result<Built, WriteError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    let size = usize_of(u64::from(dt.size), path, "datatype size")?;
    let unsupported = |what: &str| {
        Err(WriteError::new(
            path,
            "datatype",
            format!("{what} is not supported by the writer"),
        ))
    };
    let t = match &dt.class {
        DatatypeClass::FixedPoint {
            order,
            lo_pad,
            hi_pad,
            signed,
            bit_offset,
            precision,
        } => {
            let t = copy_of(*g::H5T_STD_I8LE, path)?;
            set_bits(t.id(), size, *bit_offset, *precision, path)?;
            locked(|| unsafe {
                let sign = if *signed {
                    h5t::H5T_sign_t::H5T_SGN_2
                } else {
                    h5t::H5T_sign_t::H5T_SGN_NONE
                };
                check(h5t::H5Tset_sign(t.id(), sign), path, "H5Tset_sign")?;
                check(
                    h5t::H5Tset_pad(t.id(), pad_of(*lo_pad), pad_of(*hi_pad)),
                    path,
                    "H5Tset_pad",
                )?;
                check(
                    h5t::H5Tset_order(t.id(), order_of(*order)),
                    path,
                    "H5Tset_order",
                )?;
                Ok::<(), WriteError>(())
            })?;
            t
        }
        DatatypeClass::Bitfield {
            order,
            lo_pad,
            hi_pad,
            bit_offset,
            precision,
        } => {
            let t = copy_of(*g::H5T_STD_B8LE, path)?;
            set_bits(t.id(), size, *bit_offset, *precision, path)?;
            locked(|| unsafe {
                check(
                    h5t::H5Tset_pad(t.id(), pad_of(*lo_pad), pad_of(*hi_pad)),
                    path,
                    "H5Tset_pad",
                )?;
                check(
                    h5t::H5Tset_order(t.id(), order_of(*order)),
                    path,
                    "H5Tset_order",
                )?;
                Ok::<(), WriteError>(())
            })?;
            t
        }
        DatatypeClass::Time { order, precision } => {
            let t = copy_of(*g::H5T_UNIX_D32LE, path)?;
            set_bits(t.id(), size, 0, *precision, path)?;
            locked(|| unsafe {
                check(
                    h5t::H5Tset_order(t.id(), order_of(*order)),
                    path,
                    "H5Tset_order",
                )
            })?;
            t
        }
        DatatypeClass::FloatingPoint {
            order,
            lo_pad,
            hi_pad,
            internal_pad,
            normalization,
            sign_location,
            bit_offset,
            precision,
            exponent_location,
            exponent_size,
            mantissa_location,
            mantissa_size,
            exponent_bias,
        } => {
            let norm = match normalization {
                Normalization::None => h5t::H5T_norm_t::H5T_NORM_NONE,
                Normalization::MsbSet => h5t::H5T_norm_t::H5T_NORM_MSBSET,
                Normalization::Implied => h5t::H5T_norm_t::H5T_NORM_IMPLIED,
                Normalization::Reserved => return unsupported("reserved float normalization"),
            };
            let t = copy_of(*g::H5T_IEEE_F64LE, path)?;
            let prec = usize::from(*precision);
            locked(|| unsafe {
                let id = t.id();
                // Grow first so the new fields fit, then set the fields,
                // then shrink to the stored precision and size.
                if size > 8 {
                    check(h5t::H5Tset_size(id, size), path, "H5Tset_size")?;
                }
                if prec > 64 {
                    check(h5t::H5Tset_precision(id, prec), path, "H5Tset_precision")?;
                }
                check(
                    h5t::H5Tset_fields(
                        id,
                        usize::from(*sign_location),
                        usize::from(*exponent_location),
                        usize::from(*exponent_size),
                        usize::from(*mantissa_location),
                        usize::from(*mantissa_size),
                    ),
                    path,
                    "H5Tset_fields",
                )?;
                check(h5t::H5Tset_precision(id, prec), path, "H5Tset_precision")?;
                check(
                    h5t::H5Tset_offset(id, usize::from(*bit_offset)),
                    path,
                    "H5Tset_offset",
                )?;
                if size <= 8 {
                    check(h5t::H5Tset_size(id, size), path, "H5Tset_size")?;
                }
                check(
                    h5t::H5Tset_ebias(id, *exponent_bias as usize),
                    path,
                    "H5Tset_ebias",
                )?;
                check(h5t::H5Tset_norm(id, norm), path, "H5Tset_norm")?;
                check(
                    h5t::H5Tset_inpad(id, pad_of(*internal_pad)),
                    path,
                    "H5Tset_inpad",
                )?;
                check(
                    h5t::H5Tset_pad(id, pad_of(*lo_pad), pad_of(*hi_pad)),
                    path,
                    "H5Tset_pad",
                )?;
                check(
                    h5t::H5Tset_order(id, order_of(*order)),
                    path,
                    "H5Tset_order",
                )?;
                Ok::<(), WriteError>(())
            })?;
            t
        }
        DatatypeClass::String { padding, charset } => {
            let pad = strpad_of(*padding, path)?;
            let cset = cset_of(*charset, path)?;
            let t = copy_of(*g::H5T_C_S1, path)?;
            locked(|| unsafe {
                check(h5t::H5Tset_size(t.id(), size), path, "H5Tset_size")?;
                check(h5t::H5Tset_strpad(t.id(), pad), path, "H5Tset_strpad")?;
                check(h5t::H5Tset_cset(t.id(), cset), path, "H5Tset_cset")?;
                Ok::<(), WriteError>(())
            })?;
            t
        }
        DatatypeClass::Opaque { tag } => {
            let t = hid(
                locked(|| unsafe { h5t::H5Tcreate(h5t::H5T_class_t::H5T_OPAQUE, size) }),
                Kind::Datatype,
                path,
                "H5Tcreate(opaque)",
            )?;
            if !tag.is_empty() {
                let c = cstr(tag, path, "opaque tag")?;
                locked(|| unsafe {
                    check(h5t::H5Tset_tag(t.id(), c.as_ptr()), path, "H5Tset_tag")
                })?;
            }
            t
        }
        DatatypeClass::Compound { members } => {
            let (layout, total) = compound_layout(dt, members, path, depth)?;
            let t = hid(
                locked(|| unsafe { h5t::H5Tcreate(h5t::H5T_class_t::H5T_COMPOUND, total) }),
                Kind::Datatype,
                path,
                "H5Tcreate(compound)",
            )?;
            for (m, moff) in layout {
                let mt = build(&m.datatype, path, depth + 1)?;
                let name = cstr(&m.name, path, "compound member name")?;
                locked(|| unsafe {
                    check(
                        h5t::H5Tinsert(t.id(), name.as_ptr(), moff, mt.hid.id()),
                        path,
                        &format!("H5Tinsert(member {:?})", m.name),
                    )
                })?;
            }
            t
        }
        DatatypeClass::Reference { kind, .. } => match kind {
            ReferenceKind::Object => copy_of(*g::H5T_STD_REF_OBJ, path)?,
            ReferenceKind::DatasetRegion => copy_of(*g::H5T_STD_REF_DSETREG, path)?,
            other => return unsupported(&format!("reference kind {other:?}")),
        },
        DatatypeClass::Enumeration { base, members } => {
            if needs_buffer(base, depth + 1) {
                return unsupported("an enumeration over a variable-length base");
            }
            let b = build(base, path, depth + 1)?;
            let t = hid(
                locked(|| unsafe { h5t::H5Tenum_create(b.hid.id()) }),
                Kind::Datatype,
                path,
                "H5Tenum_create",
            )?;
            for m in members {
                if m.value.len() != b.mem_size {
                    return Err(WriteError::new(
                        path,
                        "enumeration datatype",
                        format!("member {:?} value has {} bytes", m.name, m.value.len()),
                    ));
                }
                let name = cstr(&m.name, path, "enumeration member name")?;
                locked(|| unsafe {
                    check(
                        h5t::H5Tenum_insert(
                            t.id(),
                            name.as_ptr(),
                            m.value.as_ptr().cast::<c_void>(),
                        ),
                        path,
                        &format!("H5Tenum_insert({:?})", m.name),
                    )
                })?;
            }
            t
        }
        DatatypeClass::VariableLength {
            kind,
            padding,
            charset,
            base,
        } => match kind {
            VlenKind::String => {
                let pad = strpad_of(*padding, path)?;
                let cset = cset_of(*charset, path)?;
                let t = copy_of(*g::H5T_C_S1, path)?;
                locked(|| unsafe {
                    check(
                        h5t::H5Tset_size(t.id(), h5t::H5T_VARIABLE),
                        path,
                        "H5Tset_size(variable)",
                    )?;
                    check(h5t::H5Tset_strpad(t.id(), pad), path, "H5Tset_strpad")?;
                    check(h5t::H5Tset_cset(t.id(), cset), path, "H5Tset_cset")?;
                    Ok::<(), WriteError>(())
                })?;
                t
            }
            VlenKind::Sequence => {
                // A base with variable-length parts or references is built
                // in its memory shape too: its elements are filled in a
                // buffer of their own (see `Fill::sequence`).
                let b = build(base, path, depth + 1)?;
                hid(
                    locked(|| unsafe { h5t::H5Tvlen_create(b.hid.id()) }),
                    Kind::Datatype,
                    path,
                    "H5Tvlen_create",
                )?
            }
            VlenKind::Reserved(v) => return unsupported(&format!("variable-length kind {v}")),
        },
        DatatypeClass::Array { dims, base } => {
            let b = build(base, path, depth + 1)?;
            let hdims: Vec<u64> = dims.iter().map(|d| u64::from(*d)).collect();
            let rank = u32::try_from(hdims.len())
                .map_err(|_| WriteError::new(path, "array datatype", "rank too large"))?;
            hid(
                locked(|| unsafe { h5t::H5Tarray_create2(b.hid.id(), rank, hdims.as_ptr()) }),
                Kind::Datatype,
                path,
                "H5Tarray_create2",
            )?
        }
        DatatypeClass::Complex {
            homogeneous,
            form,
            base,
        } => complex(dt, *homogeneous, *form, base, path, depth)?,
    };
    let mem_size = mem_size(dt, path, depth)?;
    // libhdf5 reads `elements x H5Tget_size` bytes from every buffer it is
    // given: the type it built must have exactly the size the buffers are
    // made for, and a type whose bytes go through unchanged must have the
    // file's size (an array or enumeration whose declared size disagrees
    // with its base is refused here, not read past the end of a buffer).
    let built = locked(|| unsafe { h5t::H5Tget_size(t.id()) });
    if built != mem_size || (!needs_buffer(dt, depth) && mem_size != size) {
        return Err(WriteError::new(
            path,
            "datatype",
            format!(
                "declared size {size} disagrees with its parts (libhdf5 type of {built} bytes, \
                 {mem_size} expected)"
            ),
        ));
    }
    Ok(Built { hid: t, mem_size })
}

/// Builds the memory buffer for `n` elements of `dt` from their file
/// layout bytes: variable-length slots become `char *` / `hvl_t`, object
/// references are recreated in the output file, everything else is copied.
pub(crate) struct Fill<'a> {
    pub path: &'a str,
    pub src: &'a [u8],
    pub mem: Vec<u8>,
    pub slots: HashMap<usize, &'a VlenSlot>,
    /// Region references resolved by the reading stage, by byte offset.
    pub regions: HashMap<usize, &'a RegionValue>,
    /// NUL-terminated string copies the `char *` pointers point into.
    pub keep: Vec<Vec<u8>>,
    pub refs: &'a HashMap<u64, String>,
    pub file: hid_t,
    pub notes: Vec<String>,
    /// What region references may still cost (see [`region_cost`]).
    pub region_budget: u64,
    missing_slots: u64,
}

impl<'a> Fill<'a> {
    pub(crate) fn new(
        path: &'a str,
        src: &'a [u8],
        heap: &'a HeapValues,
        refs: &'a HashMap<u64, String>,
        file: hid_t,
    ) -> Fill<'a> {
        Fill {
            path,
            src,
            mem: Vec::new(),
            slots: heap.vlen.iter().map(|s| (s.offset, s)).collect(),
            regions: heap.regions.iter().map(|r| (r.offset, &r.value)).collect(),
            keep: Vec::new(),
            refs,
            file,
            notes: Vec::new(),
            region_budget: MAX_REGION_TOTAL,
            missing_slots: 0,
        }
    }

    /// A filler for the elements of one sequence: `src` is its heap object,
    /// `slots` and `regions` the variable-length values and region
    /// references nested in it.
    #[allow(clippy::too_many_arguments)]
    fn sequence(
        path: &'a str,
        src: &'a [u8],
        slots: &'a [VlenSlot],
        regions: &'a [super::RegionSlot],
        refs: &'a HashMap<u64, String>,
        file: hid_t,
        region_budget: u64,
    ) -> Fill<'a> {
        Fill {
            path,
            src,
            mem: Vec::new(),
            slots: slots.iter().map(|s| (s.offset, s)).collect(),
            regions: regions.iter().map(|r| (r.offset, &r.value)).collect(),
            keep: Vec::new(),
            refs,
            file,
            notes: Vec::new(),
            region_budget,
            missing_slots: 0,
        }
    }

    /// Fills `self.mem` for `n` elements whose file size is `fsize` and
    /// memory size `msize`.
    pub(crate) fn run(
        &mut self,
        dt: &Datatype,
        n: usize,
        fsize: usize,
        msize: usize,
    ) -> Result<(), WriteError> {
        let total = n
            .checked_mul(msize)
            .filter(|t| *t <= self.src.len().saturating_mul(2).saturating_add(4096))
            .ok_or_else(|| WriteError::new(self.path, "memory buffer", "size out of bounds"))?;
        self.mem = vec![0u8; total];
        for i in 0..n {
            let foff = i
                .checked_mul(fsize)
                .ok_or_else(|| WriteError::new(self.path, "memory buffer", "offset overflow"))?;
            let moff = i
                .checked_mul(msize)
                .ok_or_else(|| WriteError::new(self.path, "memory buffer", "offset overflow"))?;
            self.element(dt, foff, moff, 0)?;
        }
        if self.missing_slots > 0 {
            self.notes.push(format!(
                "{}: {} variable-length value(s) not provided; written as empty",
                self.path, self.missing_slots
            ));
        }
        Ok(())
    }

    fn put(&mut self, moff: usize, bytes: &[u8]) -> Result<(), WriteError> {
        let end = moff.checked_add(bytes.len());
        match end.and_then(|e| self.mem.get_mut(moff..e)) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(WriteError::new(
                self.path,
                "memory buffer",
                "element layout exceeds the buffer",
            )),
        }
    }

    fn src_at(&self, foff: usize, len: usize) -> Result<&'a [u8], WriteError> {
        let src: &'a [u8] = self.src;
        foff.checked_add(len)
            .and_then(|e| src.get(foff..e))
            .ok_or_else(|| {
                WriteError::new(self.path, "value bytes", "element layout exceeds the value")
            })
    }

    fn element(
        &mut self,
        dt: &Datatype,
        foff: usize,
        moff: usize,
        depth: u32,
    ) -> Result<(), WriteError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(self.path));
        }
        let fsize = usize_of(u64::from(dt.size), self.path, "datatype size")?;
        if !needs_buffer(dt, depth) {
            let b = self.src_at(foff, fsize)?;
            return self.put(moff, b);
        }
        match &dt.class {
            DatatypeClass::VariableLength { kind, base, .. } => {
                let slot = self.slots.get(&foff).copied();
                match kind {
                    VlenKind::String => {
                        let mut s: Vec<u8> = match slot {
                            Some(sl) => {
                                let end = sl
                                    .data
                                    .iter()
                                    .position(|&b| b == 0)
                                    .unwrap_or(sl.data.len());
                                sl.data.get(..end).unwrap_or_default().to_vec()
                            }
                            None => {
                                self.missing_slots += 1;
                                Vec::new()
                            }
                        };
                        s.push(0);
                        let p = s.as_ptr() as usize;
                        self.keep.push(s);
                        self.put(moff, &p.to_ne_bytes())
                    }
                    _ => {
                        let (len, p) = match slot {
                            Some(sl) => {
                                let bsize = usize_of(u64::from(base.size), self.path, "base size")?;
                                let count = usize_of(sl.count, self.path, "sequence length")?;
                                let have = sl.data.len().checked_div(bsize).unwrap_or(0);
                                if have < count {
                                    self.notes.push(format!(
                                        "{}: sequence at byte {} holds {have} of {count} elements; truncated",
                                        self.path, foff
                                    ));
                                }
                                let len = have.min(count);
                                let p = if len == 0 {
                                    0
                                } else if needs_buffer(base, depth + 1) {
                                    self.sequence_buffer(base, sl, len, bsize, foff)?
                                } else {
                                    sl.data.as_ptr() as usize
                                };
                                (len, p)
                            }
                            None => {
                                self.missing_slots += 1;
                                (0, 0)
                            }
                        };
                        self.put(moff, &len.to_ne_bytes())?;
                        self.put(moff.saturating_add(PTR), &p.to_ne_bytes())
                    }
                }
            }
            DatatypeClass::Compound { members } => {
                let (layout, _) = compound_layout(dt, members, self.path, depth)?;
                for (m, mo) in layout {
                    let f = usize_of(m.offset, self.path, "member offset")?;
                    let f = foff.checked_add(f).ok_or_else(|| {
                        WriteError::new(self.path, "memory buffer", "offset overflow")
                    })?;
                    let mo = moff.checked_add(mo).ok_or_else(|| {
                        WriteError::new(self.path, "memory buffer", "offset overflow")
                    })?;
                    self.element(&m.datatype, f, mo, depth + 1)?;
                }
                Ok(())
            }
            DatatypeClass::Array { dims, base } => {
                let n = dims
                    .iter()
                    .try_fold(1usize, |acc, d| acc.checked_mul(*d as usize))
                    .ok_or_else(|| WriteError::new(self.path, "array datatype", "size overflow"))?;
                let bf = usize_of(u64::from(base.size), self.path, "base size")?;
                let bm = mem_size(base, self.path, depth + 1)?;
                for k in 0..n {
                    let f = k.checked_mul(bf).and_then(|x| x.checked_add(foff));
                    let m = k.checked_mul(bm).and_then(|x| x.checked_add(moff));
                    let (Some(f), Some(m)) = (f, m) else {
                        return Err(WriteError::new(
                            self.path,
                            "memory buffer",
                            "offset overflow",
                        ));
                    };
                    self.element(base, f, m, depth + 1)?;
                }
                Ok(())
            }
            DatatypeClass::Reference { kind, .. } => {
                let raw = self.src_at(foff, fsize)?;
                match kind {
                    ReferenceKind::Object => {
                        let mut a = [0u8; 8];
                        for (d, s) in a.iter_mut().zip(raw.iter()) {
                            *d = *s;
                        }
                        let addr = u64::from_le_bytes(a);
                        let all_ones = raw.iter().all(|&b| b == 0xff);
                        if addr == 0 || all_ones {
                            return Ok(()); // a null reference stays null
                        }
                        match self.refs.get(&addr) {
                            Some(target) => {
                                let name = cstr(target, self.path, "reference target")?;
                                let end = moff.checked_add(8).filter(|e| *e <= self.mem.len());
                                if end.is_none() {
                                    return Err(WriteError::new(
                                        self.path,
                                        "memory buffer",
                                        "reference exceeds the buffer",
                                    ));
                                }
                                let dst = self.mem.as_mut_ptr().wrapping_add(moff);
                                let file = self.file;
                                let path = self.path;
                                let made = locked(|| unsafe {
                                    check(
                                        hdf5_sys::h5r::H5Rcreate(
                                            dst.cast::<c_void>(),
                                            file,
                                            name.as_ptr(),
                                            H5R_OBJECT,
                                            -1,
                                        ),
                                        path,
                                        &format!("H5Rcreate({target})"),
                                    )
                                });
                                if let Err(e) = made {
                                    // The target is not in the output after
                                    // all: a null reference, said.
                                    self.put(moff, &[0; 8])?;
                                    self.notes.push(format!(
                                        "{}: object reference to {target} written as null: {}",
                                        self.path, e.message
                                    ));
                                }
                                Ok(())
                            }
                            None => {
                                self.notes.push(format!(
                                    "{}: object reference to unknown address {addr:#x} written as null",
                                    self.path
                                ));
                                Ok(())
                            }
                        }
                    }
                    ReferenceKind::DatasetRegion => self.region(raw, foff, moff),
                    _ => {
                        if raw.iter().any(|&b| b != 0) {
                            self.notes.push(format!(
                                "{}: reference at byte {foff} written as null",
                                self.path
                            ));
                        }
                        Ok(())
                    }
                }
            }
            _ => Err(WriteError::new(
                self.path,
                "datatype",
                "variable-length data inside this class is not supported",
            )),
        }
    }

    /// Builds the memory form of the first `len` elements of the sequence
    /// in `sl` (whose base `base` holds variable-length parts or
    /// references, `bsize` bytes each in the file) and returns its address;
    /// the buffer (and the strings it points to) live in `self.keep`.
    fn sequence_buffer(
        &mut self,
        base: &Datatype,
        sl: &'a VlenSlot,
        len: usize,
        bsize: usize,
        foff: usize,
    ) -> Result<usize, WriteError> {
        let bm = mem_size(base, self.path, 0)?;
        let src = len
            .checked_mul(bsize)
            .and_then(|n| sl.data.get(..n))
            .ok_or_else(|| WriteError::new(self.path, "memory buffer", "sequence too short"))?;
        let mut sub = Fill::sequence(
            self.path,
            src,
            &sl.nested,
            &sl.regions,
            self.refs,
            self.file,
            self.region_budget,
        );
        let filled = sub.run(base, len, bsize, bm);
        self.region_budget = sub.region_budget;
        self.notes.extend(
            sub.notes
                .drain(..)
                .map(|n| format!("{n} (in the sequence at byte {foff})")),
        );
        filled?;
        let p = sub.mem.as_ptr() as usize;
        // Moving the vectors keeps their heap buffers where they are.
        self.keep.push(std::mem::take(&mut sub.mem));
        self.keep.append(&mut sub.keep);
        Ok(p)
    }

    /// Recreates the old-style region reference at `foff` in the output
    /// (`hdset_reg_ref_t` at `moff`), or leaves it null with a note saying
    /// why. Null references stay null without a note.
    fn region(&mut self, raw: &[u8], foff: usize, moff: usize) -> Result<(), WriteError> {
        if raw.iter().all(|&b| b == 0) {
            return Ok(());
        }
        let outcome = match self.regions.get(&foff).copied() {
            None => Err("not resolved by the reader".to_string()),
            Some(RegionValue::Null) => return Ok(()),
            Some(RegionValue::Unresolved(why)) => Err(why.clone()),
            Some(RegionValue::Resolved(r)) => match self.refs.get(&r.object) {
                None => Err(format!("target address {:#x} was not recovered", r.object)),
                Some(target) => {
                    let end = moff
                        .checked_add(std::mem::size_of::<hdset_reg_ref_t>())
                        .filter(|e| *e <= self.mem.len());
                    if end.is_none() {
                        return Err(WriteError::new(
                            self.path,
                            "memory buffer",
                            "reference exceeds the buffer",
                        ));
                    }
                    let dst = self.mem.as_mut_ptr().wrapping_add(moff);
                    let made = create_region_reference(
                        self.file,
                        dst,
                        target,
                        &r.selection.selection,
                        &mut self.region_budget,
                    );
                    if made.is_err() {
                        // Whatever a failed H5Rcreate left there: null.
                        self.put(moff, &[0; std::mem::size_of::<hdset_reg_ref_t>()])?;
                    }
                    made.map_err(|why| format!("{target}: {why}"))
                }
            },
        };
        if let Err(why) = outcome {
            self.notes.push(format!(
                "{}: region reference at byte {foff} written as null: {why}",
                self.path
            ));
        }
        Ok(())
    }
}

/// What recreating `selection` costs libhdf5 1.10, in coordinates handled
/// (`None` on overflow): it serializes points and regular hyperslabs
/// coordinate by coordinate (a regular hyperslab as every one of its
/// blocks, start and end), and OR-s each listed block into those before it
/// (quadratic: 10,000 blocks take seconds).
fn region_cost(selection: &Selection) -> Option<u64> {
    match selection {
        Selection::None | Selection::All => Some(0),
        Selection::Points { coords, .. } => u64::try_from(coords.len()).ok(),
        Selection::Regular(dims) => dims
            .iter()
            .try_fold(1u64, |a, d| a.checked_mul(d.count))?
            .checked_mul(2 * dims.len() as u64),
        Selection::Blocks { corners, .. } => {
            let k = selection.len() as u64;
            k.checked_mul(k)?.checked_add(corners.len() as u64)
        }
    }
}

/// Applies `selection` to the dataspace of the dataset `target` (which must
/// exist in `file`) after checking that it fits its current extent and
/// that its cost fits both [`MAX_REGION_COST`] and `budget` (which it is
/// taken from), and writes the region reference into `dst` (12 bytes,
/// `hdset_reg_ref_t`, checked by the caller). Errors say why no reference
/// was made.
fn create_region_reference(
    file: hid_t,
    dst: *mut u8,
    target: &str,
    selection: &Selection,
    budget: &mut u64,
) -> Result<(), String> {
    let err = |e: WriteError| e.message;
    if !super::path_exists(file, target).map_err(err)? {
        return Err("target is not in the output".into());
    }
    let name = cstr(target, target, "reference target").map_err(err)?;
    let dset = hid(
        locked(|| unsafe { h5d::H5Dopen2(file, name.as_ptr(), h5p::H5P_DEFAULT) }),
        Kind::Dataset,
        target,
        "H5Dopen2",
    )
    .map_err(|e| format!("target is not a dataset ({})", e.message))?;
    let space = hid(
        locked(|| unsafe { h5d::H5Dget_space(dset.id()) }),
        Kind::Dataspace,
        target,
        "H5Dget_space",
    )
    .map_err(err)?;
    let sid = space.id();
    let rank = locked(|| unsafe { h5s::H5Sget_simple_extent_ndims(sid) });
    let rank = usize::try_from(rank)
        .ok()
        .filter(|r| *r <= 32)
        .ok_or("target dataspace has no usable rank")?;
    let mut dims = vec![0u64; rank];
    if rank > 0 {
        let rc = locked(|| unsafe {
            h5s::H5Sget_simple_extent_dims(sid, dims.as_mut_ptr(), std::ptr::null_mut())
        });
        check(rc, target, "H5Sget_simple_extent_dims").map_err(err)?;
    }
    selection.check_within(&dims)?;
    let cost = region_cost(selection);
    match cost.filter(|c| *c <= MAX_REGION_COST && *c <= *budget) {
        Some(c) => *budget -= c,
        None => {
            return Err(format!(
                "selection too large to recreate (cost {}, limit {MAX_REGION_COST} per \
                 reference, {budget} left for this output)",
                cost.map_or("overflowing".to_string(), |c| c.to_string())
            ))
        }
    }
    select(sid, selection, target).map_err(err)?;
    locked(|| unsafe {
        check(
            hdf5_sys::h5r::H5Rcreate(
                dst.cast::<c_void>(),
                file,
                name.as_ptr(),
                H5R_DATASET_REGION,
                sid,
            ),
            target,
            "H5Rcreate(region)",
        )
    })
    .map_err(err)?;
    Ok(())
}

/// Makes `selection` (already checked against the extent) the selection of
/// dataspace `sid`: blocks are OR-ed one by one after the first.
pub(super) fn select(sid: hid_t, selection: &Selection, path: &str) -> Result<(), WriteError> {
    use h5s::H5S_seloper_t::{H5S_SELECT_OR, H5S_SELECT_SET};
    let none = || locked(|| unsafe { check(h5s::H5Sselect_none(sid), path, "H5Sselect_none") });
    match selection {
        Selection::None => none()?,
        Selection::All => {
            locked(|| unsafe { check(h5s::H5Sselect_all(sid), path, "H5Sselect_all") })?
        }
        Selection::Points { coords, .. } => {
            let n = selection.len();
            if n == 0 {
                none()?
            } else {
                locked(|| unsafe {
                    check(
                        h5s::H5Sselect_elements(sid, H5S_SELECT_SET, n, coords.as_ptr()),
                        path,
                        "H5Sselect_elements",
                    )
                })?
            }
        }
        Selection::Blocks { rank, corners } => {
            if corners.is_empty() {
                none()?;
            }
            let ones = vec![1u64; *rank];
            for (i, b) in corners.chunks_exact(rank.saturating_mul(2)).enumerate() {
                let (start, end) = b.split_at(*rank);
                // check_within guarantees start <= end.
                let block: Vec<u64> = start
                    .iter()
                    .zip(end)
                    .map(|(s, e)| e.saturating_sub(*s).saturating_add(1))
                    .collect();
                let op = if i == 0 {
                    H5S_SELECT_SET
                } else {
                    H5S_SELECT_OR
                };
                select_hyperslab(sid, op, start, None, &ones, Some(&block), path)?;
            }
            0
        }
        Selection::Regular(dims) => {
            let start: Vec<u64> = dims.iter().map(|d| d.start).collect();
            let stride: Vec<u64> = dims.iter().map(|d| d.stride).collect();
            let count: Vec<u64> = dims.iter().map(|d| d.count).collect();
            let block: Vec<u64> = dims.iter().map(|d| d.block).collect();
            select_hyperslab(
                sid,
                H5S_SELECT_SET,
                &start,
                Some(&stride),
                &count,
                Some(&block),
                path,
            )?;
            0
        }
    };
    Ok(())
}

/// What libhdf5 cannot represent of a parsed datatype, checked before
/// either backend writes anything of it: the libhdf5 backend would fail
/// building it (or libhdf5 would fail decoding it), and the native writer
/// must refuse the same types with the same words, so that both record the
/// same loss. Pure: no libhdf5 call. The rules are the parser's, stated
/// once (`Datatype::faults`, spec IV.A.2.d), so that scan calls damaged
/// every type lost here; only the nesting limit and the memory layout of
/// compounds (`compound_layout`) are the writers' own.
pub(crate) fn check_type(dt: &Datatype, path: &str, depth: u32) -> Result<(), WriteError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    if let Some(e) = dt.faults(0).into_iter().next() {
        return Err(WriteError::new(path, "datatype", e.kind.to_string()));
    }
    check_layout(dt, path, depth)
}

/// The writers' own limits on a type without faults: nesting depth and
/// the memory layout of every compound inside.
fn check_layout(dt: &Datatype, path: &str, depth: u32) -> Result<(), WriteError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    match &dt.class {
        DatatypeClass::Compound { members } => {
            compound_layout(dt, members, path, depth)?;
            members
                .iter()
                .try_for_each(|m| check_layout(&m.datatype, path, depth + 1))
        }
        DatatypeClass::Array { base, .. }
        | DatatypeClass::Enumeration { base, .. }
        | DatatypeClass::VariableLength { base, .. }
        | DatatypeClass::Complex { base, .. } => check_layout(base, path, depth + 1),
        _ => Ok(()),
    }
}

/// A dataspace libhdf5 creates (H5Screate_simple): every maximum at least
/// its size (or unlimited). Spec IV.A.2.b.
pub(crate) fn check_space(ds: &Dataspace, path: &str) -> Result<(), WriteError> {
    // The parser's rule, stated once (`Dataspace::faults`).
    match ds.faults(0).into_iter().next() {
        Some(e) => Err(WriteError::new(path, "dataspace", e.kind.to_string())),
        None => Ok(()),
    }
}

/// Largest chunk libhdf5 creates, in bytes ("chunk size must be < 4GB").
const MAX_CHUNK_BYTES: u64 = 0xffff_ffff;

/// A dataset libhdf5 creates: its datatype, dataspace and chunk size in
/// bytes (spec IV.A.2.i, chunk dimensions). Both backends ask it before
/// creating a dataset (`Writer::create_dataset`).
pub(crate) fn check_dataset(ds: &Dataset, path: &str) -> Result<(), WriteError> {
    check_type(&ds.datatype, path, 0)?;
    check_space(&ds.dataspace, path)?;
    if let LayoutClass::Chunked { dims, .. } = &ds.layout.class {
        let bytes = dims
            .iter()
            .try_fold(u64::from(ds.datatype.size), |a, d| a.checked_mul(*d));
        if bytes.is_none_or(|b| b > MAX_CHUNK_BYTES) {
            return Err(WriteError::new(
                path,
                "chunked layout",
                format!("chunk dimensions {dims:?}: one chunk is 4 GiB or more"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared check refuses exactly the types libhdf5 refuses to
    /// build, on the damaged shapes the review found (and healthy ones).
    #[test]
    fn check_type_refuses_what_build_refuses() {
        use crate::format::message::datatype::CompoundMember;
        let int = int_placed;
        let string = |padding, charset| Datatype {
            version: 1,
            size: 11,
            class: DatatypeClass::String { padding, charset },
        };
        let compound = |b_offset: u64| Datatype {
            version: 1,
            size: 16,
            class: DatatypeClass::Compound {
                members: vec![
                    CompoundMember {
                        name: "a".into(),
                        offset: 0,
                        datatype: int(4, 0, 32),
                    },
                    CompoundMember {
                        name: "b".into(),
                        offset: b_offset,
                        datatype: int(8, 0, 64),
                    },
                ],
            },
        };
        let array = |size: u32| Datatype {
            version: 1,
            size,
            class: DatatypeClass::Array {
                dims: vec![3],
                base: Box::new(int(4, 0, 32)),
            },
        };
        let cases = [
            (int(4, 0, 32), true),
            (int(4, 8, 16), true),
            (int(4, 0, 288), false),
            (int(4, 16, 32), false),
            (string(StringPadding::NullPad, CharacterSet::Ascii), true),
            (
                string(StringPadding::NullPad, CharacterSet::Reserved(5)),
                false,
            ),
            (
                string(StringPadding::Reserved(5), CharacterSet::Ascii),
                false,
            ),
            (compound(8), true),
            (compound(12), false),
            (compound(2), false),
            (array(12), true),
            (array(16), false),
        ];
        for (t, ok) in cases.into_iter().chain(moved_rules(true)) {
            let checked = check_type(&t, "/t", 0);
            assert_eq!(checked.is_ok(), ok, "{t:?}: {checked:?}");
            // The one statement of the rules: what the writers refuse is
            // exactly what scan calls damaged.
            assert_eq!(t.faults(0).is_empty(), ok, "{t:?}");
            let built = build(&t, "/t", 0);
            assert_eq!(
                built.is_ok(),
                ok,
                "{t:?}: libhdf5 builds it: {}",
                built.is_ok()
            );
        }
        // Types the linked libhdf5 builds but HDF5 2.0 does not decode, or
        // cannot create a dataset of (`H5T_is_sensible`): refused too, with
        // the fault's words.
        for (t, _) in moved_rules(false) {
            let checked = check_type(&t, "/t", 0);
            let fault = t.faults(0);
            let e = checked.expect_err("refused");
            assert_eq!(e.message, fault[0].kind.to_string(), "{t:?}");
            assert!(build(&t, "/t", 0).is_ok(), "{t:?}");
        }
    }

    /// The rules `check_type` and `Datatype::faults` stated apart before,
    /// one damaged type each (all refused): those the linked libhdf5
    /// refuses to build (`built`), or those it builds but HDF5 2.0 refuses
    /// to decode or to create a dataset of.
    fn moved_rules(built: bool) -> Vec<(Datatype, bool)> {
        let atomic = |class| Datatype {
            version: 1,
            size: 4,
            class,
        };
        let float = |sign, e: (u8, u8), m: (u8, u8)| {
            atomic(DatatypeClass::FloatingPoint {
                order: ByteOrder::LittleEndian,
                lo_pad: false,
                hi_pad: false,
                internal_pad: false,
                normalization: Normalization::Implied,
                sign_location: sign,
                bit_offset: 0,
                precision: 32,
                exponent_location: e.0,
                exponent_size: e.1,
                mantissa_location: m.0,
                mantissa_size: m.1,
                exponent_bias: 127,
            })
        };
        let time = |precision| {
            atomic(DatatypeClass::Time {
                order: ByteOrder::LittleEndian,
                precision,
            })
        };
        let int1 = int(1);
        let enumeration = |size, members: &[(&str, u8)]| Datatype {
            version: 3,
            size,
            class: DatatypeClass::Enumeration {
                base: Box::new(int1.clone()),
                members: members
                    .iter()
                    .map(|(n, v)| crate::format::message::datatype::EnumMember {
                        name: (*n).into(),
                        value: vec![*v],
                    })
                    .collect(),
            },
        };
        let i4 = |name: &str, offset| member(name, offset, int(4));
        let float_base = float(31, (23, 8), (0, 23));
        let mut refuse = if built {
            vec![
                // H5Tset_precision: a positive precision.
                atomic(DatatypeClass::FixedPoint {
                    order: ByteOrder::LittleEndian,
                    lo_pad: false,
                    hi_pad: false,
                    signed: true,
                    bit_offset: 0,
                    precision: 0,
                }),
                time(0),
                // Grows the type past its declared size.
                time(40),
                // H5Tset_fields: inside the precision, apart, the sign in
                // neither field.
                float(32, (23, 8), (0, 23)),
                float(31, (22, 8), (0, 23)),
                float(30, (23, 8), (0, 23)),
                // H5Tset_size(0).
                Datatype {
                    version: 1,
                    size: 0,
                    class: DatatypeClass::String {
                        padding: StringPadding::NullPad,
                        charset: CharacterSet::Ascii,
                    },
                },
                // H5Tinsert: one name per member.
                compound(8, vec![i4("a", 0), i4("a", 4)]),
                // H5Tenum_insert: a name, each name and value once.
                enumeration(1, &[("A", 0), ("B", 0)]),
                enumeration(1, &[("A", 0), ("A", 1)]),
                enumeration(1, &[("", 0)]),
                // The built type's size is its base's.
                enumeration(2, &[("A", 0)]),
                Datatype {
                    version: 1,
                    size: 16,
                    class: DatatypeClass::VariableLength {
                        kind: VlenKind::Reserved(2),
                        padding: StringPadding::NullTerminate,
                        charset: CharacterSet::Ascii,
                        base: Box::new(int1.clone()),
                    },
                },
                Datatype {
                    version: 1,
                    size: 8,
                    class: DatatypeClass::Reference {
                        kind: ReferenceKind::Reserved(5),
                        revision: None,
                    },
                },
                Datatype {
                    version: 5,
                    size: 8,
                    class: DatatypeClass::Complex {
                        homogeneous: false,
                        form: 0,
                        base: Box::new(float_base),
                    },
                },
            ]
        } else {
            vec![
                // H5Tset_fields takes fields of one start and of no bits;
                // libhdf5 2.0 decodes neither.
                float(31, (0, 8), (0, 23)),
                float(31, (23, 0), (0, 23)),
                // H5T_is_sensible: at least one member.
                compound(8, vec![]),
                enumeration(1, &[]),
            ]
        };
        refuse.drain(..).map(|t| (t, false)).collect()
    }

    #[test]
    fn check_space_refuses_a_maximum_below_the_size() {
        let space = |max: u64| Dataspace {
            version: 1,
            kind: crate::format::message::dataspace::DataspaceKind::Simple,
            dims: vec![100],
            max_dims: Some(vec![max]),
        };
        assert!(check_space(&space(50), "/d").is_err());
        assert!(check_space(&space(100), "/d").is_ok());
        assert!(check_space(&space(u64::MAX), "/d").is_ok());
    }

    /// Symbols are looked up in the object holding our libhdf5 only: its
    /// own functions resolve there (not through a global look-up, which
    /// would find `malloc` in libc), and `H5Tcomplex_create` exactly when
    /// it is 2.x (Debian's 1.10 has none: `None`, no failure).
    #[cfg(not(feature = "static-hdf5"))]
    #[test]
    fn hdf5_symbols_come_from_our_libhdf5() {
        let base = |f: *const c_void| {
            let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
            assert_ne!(unsafe { libc::dladdr(f, &mut info) }, 0);
            info.dli_fbase
        };
        let ours = base(hdf5_sys::h5::H5get_libversion as *const c_void);
        let f = hdf5_symbol(c"H5Tcreate").expect("H5Tcreate in our libhdf5");
        assert_eq!(base(f), ours);
        assert_eq!(hdf5_symbol(c"malloc"), None, "libc's, not libhdf5's");
        assert_eq!(hdf5_symbol(c"no_such_symbol_h5salvage"), None);
        let complex = hdf5_symbol(c"H5Tcomplex_create");
        assert_eq!(
            complex.is_some(),
            libversion() >= (2, 0, 0),
            "{:?}",
            libversion()
        );
        if let Some(f) = complex {
            assert_eq!(base(f), ours);
        }
        assert_eq!(complex_create().is_some(), complex.is_some());
    }

    fn int(size: u32) -> Datatype {
        int_placed(size, 0, (size * 8) as u16)
    }

    /// A signed little-endian integer of `size` bytes whose value bits are
    /// `precision` bits from `bit_offset`.
    fn int_placed(size: u32, bit_offset: u16, precision: u16) -> Datatype {
        Datatype {
            version: 1,
            size,
            class: DatatypeClass::FixedPoint {
                order: ByteOrder::LittleEndian,
                lo_pad: false,
                hi_pad: false,
                signed: true,
                bit_offset,
                precision,
            },
        }
    }

    fn vstr() -> Datatype {
        Datatype {
            version: 1,
            size: 16,
            class: DatatypeClass::VariableLength {
                kind: VlenKind::String,
                padding: StringPadding::NullTerminate,
                charset: CharacterSet::Utf8,
                base: Box::new(int(1)),
            },
        }
    }

    fn member(name: &str, offset: u64, datatype: Datatype) -> CompoundMember {
        CompoundMember {
            name: name.into(),
            offset,
            datatype,
        }
    }

    fn compound(size: u32, members: Vec<CompoundMember>) -> Datatype {
        Datatype {
            version: 1,
            size,
            class: DatatypeClass::Compound { members },
        }
    }

    #[test]
    fn vlen_strings_shrink_later_members() {
        // {s: vlen str @0, a: i4 @16, t: vlen str @20, b: i4 @36}, size 40.
        let c = compound(
            40,
            vec![
                member("b", 36, int(4)),
                member("s", 0, vstr()),
                member("t", 20, vstr()),
                member("a", 16, int(4)),
            ],
        );
        let DatatypeClass::Compound { members } = &c.class else {
            unreachable!()
        };
        let (layout, size) = compound_layout(&c, members, "/x", 0).unwrap();
        let got: Vec<(&str, usize)> = layout.iter().map(|(m, o)| (m.name.as_str(), *o)).collect();
        // Declared order kept; memory offsets follow the byte offsets.
        assert_eq!(got, vec![("b", 20), ("s", 0), ("t", 12), ("a", 8)]);
        assert_eq!(size, 24);
        assert_eq!(mem_size(&c, "/x", 0).unwrap(), 24);
        assert!(needs_buffer(&c, 0));
        assert!(!needs_buffer(&int(4), 0));
    }

    #[test]
    fn inconsistent_compounds_are_errors() {
        // Members past the compound's end.
        let c = compound(8, vec![member("s", 0, vstr())]);
        let DatatypeClass::Compound { members } = &c.class else {
            unreachable!()
        };
        assert!(compound_layout(&c, members, "/x", 0).is_err());
        // Overlapping vlen slots push an offset below zero.
        let c = compound(40, vec![member("s", 0, vstr()), member("t", 4, vstr())]);
        let DatatypeClass::Compound { members } = &c.class else {
            unreachable!()
        };
        assert!(compound_layout(&c, members, "/x", 0).is_err());
    }

    #[test]
    fn arrays_of_vlen_strings_use_pointer_stride() {
        let a = Datatype {
            version: 2,
            size: 48,
            class: DatatypeClass::Array {
                dims: vec![3],
                base: Box::new(vstr()),
            },
        };
        assert_eq!(mem_size(&a, "/x", 0).unwrap(), 3 * PTR);
        let huge = Datatype {
            version: 2,
            size: 48,
            class: DatatypeClass::Array {
                dims: vec![u32::MAX, u32::MAX, u32::MAX],
                base: Box::new(int(8)),
            },
        };
        assert!(mem_size(&huge, "/x", 0).is_err());
    }

    #[test]
    fn fill_checks_bounds() {
        let refs = HashMap::new();
        let slots = HeapValues::vlen(vec![VlenSlot::new(0, 3, b"ab\0c".to_vec())]);
        let src = [0u8; 16];
        let mut f = Fill::new("/x", &src, &slots, &refs, -1);
        f.run(&vstr(), 1, 16, PTR).unwrap();
        assert_eq!(f.keep, vec![b"ab\0".to_vec()]);
        // More elements than bytes: an error, not a panic.
        let mut f = Fill::new("/x", &src, &slots, &refs, -1);
        assert!(f.run(&int(4), 5, 4, 4).is_err());
        // A missing slot is written as an empty string, with a note.
        let none = HeapValues::default();
        let mut f = Fill::new("/x", &src, &none, &refs, -1);
        f.run(&vstr(), 1, 16, PTR).unwrap();
        assert_eq!(f.notes.len(), 1);
    }

    /// A file holding a chunked, unallocated dataset "/t" of `dims`.
    fn target(dir: &std::path::Path, dims: &[usize]) -> hdf5::File {
        let f = hdf5::File::create(dir.join("t.h5")).unwrap();
        let chunk: Vec<usize> = dims.iter().map(|_| 1024).collect();
        f.new_dataset::<u8>()
            .chunk(chunk)
            .shape(dims)
            .create("t")
            .unwrap();
        f
    }

    /// Fills `n` region references, each resolved to `sel` on "/t" of `f`:
    /// the notes and the time taken.
    fn fill_regions(f: &hdf5::File, n: usize, sel: Selection) -> (Vec<String>, f64) {
        use crate::format::selection::{DataspaceSelection, RegionReference};
        let dt = Datatype {
            version: 1,
            size: 12,
            class: DatatypeClass::Reference {
                kind: ReferenceKind::DatasetRegion,
                revision: None,
            },
        };
        let value = RegionValue::Resolved(RegionReference {
            object: 0x100,
            selection: DataspaceSelection {
                selection_type: 2,
                version: 3,
                encode_size: 8,
                selection: sel,
            },
        });
        let heap = HeapValues {
            vlen: vec![],
            regions: (0..n)
                .map(|i| super::super::RegionSlot {
                    offset: 12 * i,
                    value: value.clone(),
                })
                .collect(),
        };
        let refs = HashMap::from([(0x100u64, "/t".to_string())]);
        let src = vec![1u8; 12 * n];
        let mut fill = Fill::new("/r", &src, &heap, &refs, f.id());
        let t = std::time::Instant::now();
        fill.run(&dt, n, 12, 12).unwrap();
        (fill.notes, t.elapsed().as_secs_f64())
    }

    fn block_list(n: u64) -> Selection {
        Selection::Blocks {
            rank: 1,
            corners: (0..n).flat_map(|i| [4 * i, 4 * i + 1]).collect(),
        }
    }

    #[test]
    fn region_selections_are_bounded_in_time_and_memory() {
        // Review finding: libhdf5 1.10 OR-s hyperslab blocks in super-
        // quadratic time (10,000 blocks 2 s, 40,000 blocks 47 s: a 160 KB
        // heap object), and expands a regular hyperslab into every block
        // (8 bytes x rank each) when it serializes a region reference.
        let dir = tempfile::tempdir().unwrap();
        let f = target(dir.path(), &[1 << 40]);
        let (notes, secs) = fill_regions(&f, 1, block_list(40_000));
        assert!(secs < 10.0, "{secs} s");
        assert!(notes.len() == 1 && notes[0].contains("limit"), "{notes:?}");
        let huge = Selection::Regular(vec![crate::format::selection::RegularDim {
            start: 0,
            stride: 2,
            count: 1 << 36,
            block: 1,
        }]);
        let (notes, secs) = fill_regions(&f, 1, huge);
        assert!(secs < 10.0, "{secs} s");
        assert!(notes.len() == 1 && notes[0].contains("limit"), "{notes:?}");
        // Small selections pass.
        let (notes, _) = fill_regions(&f, 3, block_list(10));
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn region_selections_share_one_budget() {
        // Many references each under the per-reference limit still add up:
        // the writer has one budget, after which references are null, said.
        let dir = tempfile::tempdir().unwrap();
        let f = target(dir.path(), &[1 << 20]);
        let (notes, secs) = fill_regions(&f, 200, block_list(1500));
        assert!(secs < 30.0, "{secs} s");
        assert!(
            !notes.is_empty() && notes.iter().all(|n| n.contains("limit")),
            "{notes:?}"
        );
    }

    #[test]
    fn built_type_size_must_match_the_declared_size() {
        // Fuzz finding: an array type declaring 1 byte for 3905 one-byte
        // elements made libhdf5 read 3905 bytes from a 1-byte buffer.
        let lying = Datatype {
            version: 2,
            size: 1,
            class: DatatypeClass::Array {
                dims: vec![3905],
                base: Box::new(int(1)),
            },
        };
        let e = build(&lying, "/x", 0).err().expect("refused");
        assert!(e.to_string().contains("declared size 1"), "{e}");
        let honest = Datatype {
            size: 3905,
            ..lying.clone()
        };
        assert_eq!(build(&honest, "/x", 0).unwrap().mem_size, 3905);
        // An enumeration whose declared size is not its base's size.
        let en = Datatype {
            version: 1,
            size: 8,
            class: DatatypeClass::Enumeration {
                base: Box::new(int(1)),
                members: vec![],
            },
        };
        assert!(build(&en, "/x", 0).is_err());
    }
}
