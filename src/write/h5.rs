//! Thin safe helpers over the libhdf5 C API (`hdf5-sys`): owned identifiers
//! that close themselves, return-code checks that capture libhdf5's error
//! stack, and C string conversion. Every C call runs inside
//! [`hdf5::sync::sync`], the hdf5 crate's global (reentrant) library lock.

use std::ffi::CString;

use hdf5_sys::h5::herr_t;
use hdf5_sys::h5i::hid_t;

use super::WriteError;

/// Runs `f` under the hdf5 crate's global library lock.
pub(crate) fn locked<T>(f: impl FnOnce() -> T) -> T {
    hdf5::sync::sync(f)
}

/// What closes an identifier of a given kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Group,
    Dataset,
    Datatype,
    Dataspace,
    Plist,
    Attribute,
    Object,
}

/// An open libhdf5 identifier, closed on drop.
#[derive(Debug)]
pub(crate) struct Hid {
    id: hid_t,
    kind: Kind,
}

impl Hid {
    pub(crate) fn id(&self) -> hid_t {
        self.id
    }

    /// Closes now, reporting a failure (drop ignores it).
    pub(crate) fn close(mut self) -> std::result::Result<(), String> {
        let id = std::mem::replace(&mut self.id, -1);
        let rc = close_id(id, self.kind);
        if rc < 0 {
            Err(stack_message())
        } else {
            Ok(())
        }
    }
}

fn close_id(id: hid_t, kind: Kind) -> herr_t {
    if id < 0 {
        return 0;
    }
    locked(|| unsafe {
        match kind {
            Kind::File => hdf5_sys::h5f::H5Fclose(id),
            Kind::Group => hdf5_sys::h5g::H5Gclose(id),
            Kind::Dataset => hdf5_sys::h5d::H5Dclose(id),
            Kind::Datatype => hdf5_sys::h5t::H5Tclose(id),
            Kind::Dataspace => hdf5_sys::h5s::H5Sclose(id),
            Kind::Plist => hdf5_sys::h5p::H5Pclose(id),
            Kind::Attribute => hdf5_sys::h5a::H5Aclose(id),
            Kind::Object => hdf5_sys::h5o::H5Oclose(id),
        }
    })
}

impl Drop for Hid {
    fn drop(&mut self) {
        let _ = close_id(self.id, self.kind);
    }
}

/// libhdf5's current error stack as one line (innermost description last).
pub(crate) fn stack_message() -> String {
    match hdf5::Error::query() {
        Ok(e) => {
            let detail = e
                .stack()
                .and_then(|s| s.detail())
                .unwrap_or_else(|| e.to_string());
            if detail.is_empty() {
                "libhdf5 reported an error".to_string()
            } else {
                detail
            }
        }
        Err(_) => "libhdf5 reported an error (no error stack)".to_string(),
    }
}

/// Wraps a returned identifier, or turns a negative one into an error.
pub(crate) fn hid(id: hid_t, kind: Kind, path: &str, what: &str) -> Result<Hid, WriteError> {
    if id < 0 {
        Err(WriteError::new(path, what, stack_message()))
    } else {
        Ok(Hid { id, kind })
    }
}

/// Checks an `herr_t`/`htri_t` return value; returns it when non-negative.
pub(crate) fn check(rc: herr_t, path: &str, what: &str) -> Result<herr_t, WriteError> {
    if rc < 0 {
        Err(WriteError::new(path, what, stack_message()))
    } else {
        Ok(rc)
    }
}

/// A C string for libhdf5 (names and paths must not contain NUL).
pub(crate) fn cstr(s: &str, path: &str, what: &str) -> Result<CString, WriteError> {
    CString::new(s).map_err(|_| WriteError::new(path, what, "name contains a NUL byte"))
}

/// `H5Sselect_hyperslab` on `space` with operator `op`; `stride` and `block`
/// `None` mean all ones. The slices must have the space's rank.
pub(crate) fn select_hyperslab(
    space: hid_t,
    op: hdf5_sys::h5s::H5S_seloper_t,
    start: &[u64],
    stride: Option<&[u64]>,
    count: &[u64],
    block: Option<&[u64]>,
    path: &str,
) -> std::result::Result<(), WriteError> {
    let ptr = |v: Option<&[u64]>| v.map_or(std::ptr::null(), <[u64]>::as_ptr);
    locked(|| unsafe {
        check(
            hdf5_sys::h5s::H5Sselect_hyperslab(
                space,
                op,
                start.as_ptr(),
                ptr(stride),
                count.as_ptr(),
                ptr(block),
            ),
            path,
            "H5Sselect_hyperslab",
        )
    })?;
    Ok(())
}
