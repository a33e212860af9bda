//! What the output shares the way its input did: committed (named)
//! datatypes that datasets and attributes refer to (spec IV.A.2.d, a
//! shared datatype message naming a committed datatype's header), and the
//! creation order of a group's links (spec IV.A.2.c, the link info
//! message's creation order tracking).

use std::collections::HashSet;

use hdf5_sys::h5::{H5_index_t, H5_iter_order_t};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::{h5g, h5l, h5p, h5t};

use super::h5::{check, cstr, hid, locked, Hid, Kind};
use super::{WriteError, Writer};

/// Joins a member name to its group's path.
fn member_path(group: &str, name: &str) -> String {
    if group == "/" {
        format!("/{name}")
    } else {
        format!("{group}/{name}")
    }
}

impl Writer {
    /// The committed datatype of source header address `addr` was written
    /// at `path`: datasets and attributes whose type names that header will
    /// refer to it instead of carrying a copy.
    pub fn note_committed(&mut self, addr: u64, path: &str) {
        self.committed.insert(addr, path.to_string());
    }

    /// Forgets the committed datatypes noted so far (addresses belong to
    /// one input).
    pub fn clear_committed(&mut self) {
        self.committed.clear();
    }

    /// The committed datatype written for source header `source`, opened,
    /// when there is one and it equals `built` (the type built from the
    /// same message); `None` otherwise (the caller uses `built`, a copy).
    /// A type that named a committed one but cannot share it is said in a
    /// note ([`Writer::take_type_notes`]): same type, no longer shared.
    pub(super) fn committed_type(
        &mut self,
        source: Option<u64>,
        built: hid_t,
        path: &str,
    ) -> Option<Hid> {
        let addr = source?;
        let why = match self.shared_type(addr, built, path) {
            Ok(t) => return Some(t),
            Err(why) => why,
        };
        self.type_notes.push(format!(
            "{path}: its committed datatype (source header at {addr}) {why}: written with a \
             copy of the type, not shared"
        ));
        None
    }

    /// [`Writer::committed_type`]'s look-up; why not where it fails.
    fn shared_type(&self, addr: u64, built: hid_t, path: &str) -> Result<Hid, String> {
        let target = self
            .committed
            .get(&addr)
            .ok_or_else(|| "was not written".to_string())?;
        let fid = self.fid(path).map_err(|e| e.to_string())?;
        let c = cstr(target, path, "committed datatype").map_err(|e| e.to_string())?;
        let t = hid(
            locked(|| unsafe { h5t::H5Topen2(fid, c.as_ptr(), h5p::H5P_DEFAULT) }),
            Kind::Datatype,
            path,
            "H5Topen2",
        )
        .map_err(|e| format!("at {target} cannot be opened ({e})"))?;
        let equal = locked(|| unsafe { h5t::H5Tequal(t.id(), built) });
        if equal > 0 {
            Ok(t)
        } else {
            Err(format!("at {target} differs from the type read here"))
        }
    }

    /// The names of the links in `group`, in creation order (the group
    /// must track it).
    fn links_by_creation_order(&self, group: &str) -> Result<Vec<String>, WriteError> {
        let fid = self.fid(group)?;
        let cg = cstr(group, group, "group")?;
        let mut info = std::mem::MaybeUninit::<h5g::H5G_info_t>::zeroed();
        locked(|| unsafe {
            check(
                h5g::H5Gget_info_by_name(fid, cg.as_ptr(), info.as_mut_ptr(), h5p::H5P_DEFAULT),
                group,
                "H5Gget_info_by_name",
            )
        })?;
        // SAFETY: H5Gget_info_by_name succeeded and filled it.
        let count = unsafe { info.assume_init() }.nlinks;
        let mut names = Vec::new();
        for i in 0..count {
            let name_at = |buf: *mut std::ffi::c_char, size: usize| {
                locked(|| unsafe {
                    h5l::H5Lget_name_by_idx(
                        fid,
                        cg.as_ptr(),
                        H5_index_t::H5_INDEX_CRT_ORDER,
                        H5_iter_order_t::H5_ITER_INC,
                        i,
                        buf,
                        size,
                        h5p::H5P_DEFAULT,
                    )
                })
            };
            let len = name_at(std::ptr::null_mut(), 0);
            let len = usize::try_from(len)
                .map_err(|_| WriteError::new(group, "H5Lget_name_by_idx", "failed"))?;
            let mut buf = vec![0u8; len + 1];
            if name_at(buf.as_mut_ptr().cast(), buf.len()) < 0 {
                return Err(WriteError::new(group, "H5Lget_name_by_idx", "failed"));
            }
            buf.truncate(len);
            names.push(String::from_utf8_lossy(&buf).into_owned());
        }
        Ok(names)
    }

    /// Makes `group` (which tracks link creation order) list its links in
    /// the order of `names`; links not named there (added by h5salvage,
    /// such as `/lost+found`) come after them, and names not in the group
    /// are ignored. libhdf5 gives a moved link the next creation order of
    /// its group, so each link from the first one out of place on is moved
    /// away and back, in the wanted order.
    ///
    /// A link that cannot be moved back from its temporary name is tried
    /// once more; if it stays there, [`ReorderError::Stranded`] says where.
    pub fn reorder_links(&mut self, group: &str, names: &[String]) -> Result<(), ReorderError> {
        if let Some(n) = self.native.as_mut() {
            return n.reorder_links(group, names).map_err(ReorderError::NotKept);
        }
        let current = self
            .links_by_creation_order(group)
            .map_err(ReorderError::NotKept)?;
        let present: HashSet<&str> = current.iter().map(String::as_str).collect();
        let mut seen = HashSet::new();
        let mut want: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| present.contains(n) && seen.insert(*n))
            .collect();
        want.extend(
            current
                .iter()
                .map(String::as_str)
                .filter(|n| !seen.contains(n)),
        );
        let Some(first) = current
            .iter()
            .zip(&want)
            .position(|(c, w)| c.as_str() != *w)
        else {
            return Ok(());
        };
        let mut tmp = String::from("h5salvage-reorder");
        while present.contains(tmp.as_str()) {
            tmp.push('_');
        }
        let tmp = member_path(group, &tmp);
        for name in &want[first..] {
            let path = member_path(group, name);
            self.rename(&path, &tmp).map_err(ReorderError::NotKept)?;
            if let Err(error) = self.move_back(&tmp, &path) {
                if self.move_back(&tmp, &path).is_err() {
                    return Err(ReorderError::Stranded {
                        path,
                        stranded: tmp,
                        error,
                    });
                }
            }
        }
        Ok(())
    }

    /// The second half of a reordering move.
    fn move_back(&mut self, tmp: &str, path: &str) -> Result<(), WriteError> {
        #[cfg(test)]
        if tests::FAIL_MOVE_BACK.with(std::cell::Cell::get) {
            return Err(WriteError::new(
                path,
                "H5Lmove",
                "failure injected by a test",
            ));
        }
        self.rename(tmp, path)
    }
}

/// Why [`Writer::reorder_links`] did not put a group's links in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReorderError {
    /// The links keep the order they were written in; every link has its
    /// name.
    NotKept(WriteError),
    /// The link `path` could not be moved back from its temporary name:
    /// it is at `stranded`, the output is otherwise whole.
    Stranded {
        path: String,
        stranded: String,
        error: WriteError,
    },
}

impl std::fmt::Display for ReorderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReorderError::NotKept(e) => write!(f, "{e}"),
            ReorderError::Stranded {
                path,
                stranded,
                error,
            } => write!(
                f,
                "{path} left under the temporary name {stranded} (moving it back failed twice: \
                 {error})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReorderError;
    use crate::write::{CreationOrder, Writer};
    use std::cell::Cell;

    thread_local! {
        /// Makes every move back of a reordering fail (this thread only).
        pub(super) static FAIL_MOVE_BACK: Cell<bool> = const { Cell::new(false) };
    }

    /// A link whose move back fails stays under the temporary name, and
    /// the error says so, typed; without the failure the order is put
    /// right.
    #[test]
    fn a_link_that_cannot_be_moved_back_is_reported_stranded() {
        let dir = tempfile::tempdir().unwrap();
        let tracked = CreationOrder {
            tracked: true,
            indexed: true,
        };
        let mut w = Writer::create(&dir.path().join("out.h5")).unwrap();
        w.group_ordered("/g", tracked, CreationOrder::default())
            .unwrap();
        for n in ["b", "a"] {
            w.group(&format!("/g/{n}")).unwrap();
        }
        let want = vec!["a".to_string(), "b".to_string()];
        FAIL_MOVE_BACK.with(|f| f.set(true));
        let e = w.reorder_links("/g", &want).unwrap_err();
        FAIL_MOVE_BACK.with(|f| f.set(false));
        let ReorderError::Stranded { path, stranded, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(path, "/g/a");
        assert_eq!(stranded, "/g/h5salvage-reorder");
        assert!(!w.exists("/g/a").unwrap() && w.exists(stranded).unwrap());
        assert!(
            e.to_string().contains("left under the temporary name"),
            "{e}"
        );
        w.rename(stranded, "/g/a").unwrap();
        w.reorder_links("/g", &want).unwrap();
        assert_eq!(w.links_by_creation_order("/g").unwrap(), want);
        w.finish(false).unwrap();
    }

    /// A dataset whose committed datatype was not written (or differs)
    /// gets a copy of the type, and a note says it is no longer shared.
    #[test]
    fn a_committed_type_that_cannot_be_shared_is_noted() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/rich_earliest.h5");
        let file = std::fs::read(fixture).unwrap();
        let inv = crate::walk::walk("rich", &file);
        let ds = inv
            .object("/datasets/chunked")
            .unwrap()
            .dataset
            .clone()
            .unwrap();
        let mut w = Writer::create(&dir.path().join("out.h5")).unwrap();
        let none = crate::write::HeapValues::default();
        w.create_dataset("/plain", &ds, &none, CreationOrder::default(), None)
            .unwrap();
        assert!(w.take_type_notes().is_empty());
        w.create_dataset("/d", &ds, &none, CreationOrder::default(), Some(4242))
            .unwrap();
        let notes = w.take_type_notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0]
                .starts_with("/d: its committed datatype (source header at 4242) was not written"),
            "{notes:?}"
        );
        w.finish(false).unwrap();
    }
}
