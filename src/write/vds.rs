//! Virtual datasets (spec IV.A.2.i, layout class 3; mappings of spec
//! III.F): the output's dataset gets the input's mappings, source file
//! and dataset names as stored, the same source and virtual selections.
//! No data is copied: it stays in the source files.

use hdf5_sys::h5::herr_t;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::{h5f, h5p, h5s};

use super::h5::{check, cstr, hid, locked, Kind};
use super::{types, CreationOrder, Dataset, HeapValues, WriteError, Writer};
use crate::format::message::dataspace::Dataspace;
use crate::format::selection::{Selection, UNLIMITED};
use crate::format::vds::VirtualMapping;

extern "C" {
    // H5Fpublic.h, since libhdf5 1.10.2 (hdf5-sys binds it only with its
    // "1.10.2" feature).
    pub(super) fn H5Fset_libver_bounds(
        file_id: hid_t,
        low: h5f::H5F_libver_t,
        high: h5f::H5F_libver_t,
    ) -> herr_t;
}

/// Mappings at most recreated for one dataset (libhdf5 keeps each in
/// memory with its two dataspaces).
const MAX_MAPPINGS: usize = 100_000;

impl Writer {
    /// Where the paths of the input written next go in the output: the
    /// (source, destination) pairs of every unit `merge` takes from it, so
    /// that a virtual dataset whose source lies in the same file (source
    /// file ".") names the source's copy in the output. `None` (the
    /// default): paths keep their names.
    pub fn set_same_file_units(&mut self, units: Option<Vec<(String, String)>>) {
        self.same_file_units = units;
    }

    /// The name in the output of `name`, the source dataset of mapping `i`
    /// of `path` in the same file; a degraded-value note where no unit
    /// taken from the input holds it (named as stored, it may name nothing
    /// or another input's dataset).
    fn same_file_source(&mut self, name: &str, path: &str, i: usize) -> String {
        let Some(units) = &self.same_file_units else {
            return name.to_string();
        };
        // Source dataset names are resolved from the file's root.
        let abs = if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/{name}")
        };
        match unit_path(units, &abs) {
            Some(dest) => dest,
            None => {
                self.notes.push(format!(
                    "{path}: mapping {i}: its source {abs} in the same file is not copied from \
                     this input: named as stored, it may name no dataset or another input's"
                ));
                name.to_string()
            }
        }
    }

    /// Creates the virtual dataset `ds` at `path` with `mappings` (see
    /// [`Writer::create_dataset`] for the other arguments).
    pub fn create_virtual_dataset(
        &mut self,
        path: &str,
        ds: &Dataset,
        attrs: CreationOrder,
        committed: Option<u64>,
        mappings: Vec<VirtualMapping>,
    ) -> Result<(), WriteError> {
        if self.native.is_some() {
            return Err(super::native::unsupported_call(path, "virtual dataset"));
        }
        let none = HeapValues::default();
        self.with_formats(path, true, |w| {
            w.create_with_layout(path, ds, &none, attrs, committed, Some(mappings))
        })
    }

    /// Runs `f`, if `latest` with the output's upper libver bound at the
    /// latest formats (a virtual layout is layout message version 4, from
    /// 1.10; the complex class is datatype message version 5, from 2.0),
    /// then puts the output's own bound back (1.8 for a new output, latest
    /// for a copy), whatever the outcome: what is written next keeps it.
    pub(super) fn with_formats<T>(
        &mut self,
        path: &str,
        latest: bool,
        f: impl FnOnce(&mut Writer) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        if !latest {
            return f(self);
        }
        let fid = self.fid(path)?;
        let set = |high: h5f::H5F_libver_t, what: &str| {
            locked(|| unsafe {
                check(
                    H5Fset_libver_bounds(fid, h5f::H5F_libver_t::H5F_LIBVER_V18, high),
                    path,
                    what,
                )
            })
        };
        set(h5f::H5F_LIBVER_LATEST, "H5Fset_libver_bounds")?;
        let done = f(self);
        let restored = set(self.libver_high, "H5Fset_libver_bounds(restore)");
        let v = done?;
        restored?;
        Ok(v)
    }

    /// Adds a virtual dataset's mappings to its creation property list
    /// `dcpl` (dataspace `space`).
    pub(super) fn set_virtual(
        &mut self,
        dcpl: hid_t,
        maps: Option<Vec<VirtualMapping>>,
        space: &Dataspace,
        path: &str,
    ) -> Result<(), WriteError> {
        let maps = maps.ok_or_else(|| {
            WriteError::new(path, "layout", "virtual dataset without its mappings")
        })?;
        if maps.len() > MAX_MAPPINGS {
            return Err(WriteError::new(
                path,
                "virtual layout",
                format!("{} mappings (at most {MAX_MAPPINGS} recreated)", maps.len()),
            ));
        }
        for (i, m) in maps.iter().enumerate() {
            let at = format!("{path} (mapping {i})");
            let vspace = Self::space(space, &at)?;
            let rank = space.dims.len();
            if m.virtual_selection
                .selection
                .rank()
                .is_some_and(|r| r != rank)
            {
                return Err(WriteError::new(
                    &at,
                    "virtual selection",
                    format!("not of the dataset's rank {rank}"),
                ));
            }
            types::select(vspace.id(), &m.virtual_selection.selection, &at)?;
            let npoints = locked(|| unsafe { h5s::H5Sget_select_npoints(vspace.id()) });
            let src = source_space(&m.source_selection.selection, npoints, &at)?;
            types::select(src.id(), &m.source_selection.selection, &at)?;
            let source = if m.source_file == "." {
                self.same_file_source(&m.source_dataset, path, i)
            } else {
                m.source_dataset.clone()
            };
            let file = cstr(&m.source_file, &at, "source file name")?;
            let dset = cstr(&source, &at, "source dataset name")?;
            locked(|| unsafe {
                check(
                    h5p::H5Pset_virtual(dcpl, vspace.id(), file.as_ptr(), dset.as_ptr(), src.id()),
                    &at,
                    "H5Pset_virtual",
                )
            })?;
        }
        Ok(())
    }
}

/// `path` (absolute) in the output: below the unit whose source is its
/// nearest ancestor (or itself), moved to that unit's destination.
fn unit_path(units: &[(String, String)], path: &str) -> Option<String> {
    units
        .iter()
        .filter_map(|(src, dest)| {
            let rest = path.strip_prefix(src.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| (src.len(), format!("{dest}{rest}")))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

/// A dataspace for a source selection. Only the selection is stored (the
/// source's extent is the source dataset's, read when the virtual dataset
/// is), so the extent only has to hold the selection: its bounds, unlimited
/// where the selection is; for "all", `npoints` elements (what the virtual
/// selection selects, which libhdf5 requires to match).
fn source_space(sel: &Selection, npoints: i64, path: &str) -> Result<super::h5::Hid, WriteError> {
    let (dims, max): (Vec<u64>, Vec<u64>) = match sel {
        Selection::All | Selection::None => {
            let n = u64::try_from(npoints).unwrap_or(0);
            (vec![n], vec![n])
        }
        Selection::Points { rank, coords } => {
            let mut d = vec![1u64; *rank];
            for (i, c) in coords.iter().enumerate() {
                d[i % rank] = d[i % rank].max(c.saturating_add(1));
            }
            (d.clone(), d)
        }
        Selection::Blocks { rank, corners } => {
            let mut d = vec![1u64; *rank];
            for b in corners.chunks_exact(rank.saturating_mul(2)) {
                for (k, e) in b[*rank..].iter().enumerate() {
                    d[k] = d[k].max(e.saturating_add(1));
                }
            }
            (d.clone(), d)
        }
        Selection::Regular(dims) => dims
            .iter()
            .map(|r| {
                if r.count == UNLIMITED || r.block == UNLIMITED {
                    (r.start.saturating_add(1), UNLIMITED)
                } else {
                    let last = r
                        .start
                        .saturating_add(r.count.saturating_sub(1).saturating_mul(r.stride))
                        .saturating_add(r.block);
                    (last.max(1), last.max(1))
                }
            })
            .unzip(),
    };
    let rank = i32::try_from(dims.len())
        .ok()
        .filter(|r| (1..=32).contains(r))
        .ok_or_else(|| WriteError::new(path, "source selection", "rank out of range"))?;
    hid(
        locked(|| unsafe { h5s::H5Screate_simple(rank, dims.as_ptr(), max.as_ptr()) }),
        Kind::Dataspace,
        path,
        "H5Screate_simple(source)",
    )
}

#[cfg(test)]
mod tests {
    use super::unit_path;
    use crate::write::h5::locked;
    use crate::write::Writer;
    use hdf5_sys::{h5f, h5p};

    /// The file's current libver bounds (its access property list).
    fn bounds(w: &Writer) -> (h5f::H5F_libver_t, h5f::H5F_libver_t) {
        let fid = w.fid("/").unwrap();
        let (mut low, mut high) = (h5f::H5F_LIBVER_LATEST, h5f::H5F_LIBVER_LATEST);
        locked(|| unsafe {
            let fapl = h5f::H5Fget_access_plist(fid);
            assert!(fapl >= 0);
            assert!(h5p::H5Pget_libver_bounds(fapl, &mut low, &mut high) >= 0);
            h5p::H5Pclose(fapl);
        });
        (low, high)
    }

    /// A virtual dataset needs the 1.10 formats allowed while it is
    /// created; the file's own bounds (1.8, 1.8 for a new output) are back
    /// afterwards, for whatever is written next.
    #[test]
    fn a_virtual_dataset_leaves_the_bounds_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vds/vds_earliest.h5");
        let file = std::fs::read(fixture).unwrap();
        let inv = crate::walk::walk("vds", &file);
        let vds = inv.object("/stack").unwrap().dataset.clone().unwrap();
        let maps = crate::read::vds::mappings(&inv.image(&file), &vds.layout.class)
            .unwrap()
            .unwrap();
        let mut w = Writer::create(&dir.path().join("out.h5")).unwrap();
        let v18 = h5f::H5F_libver_t::H5F_LIBVER_V18;
        assert_eq!(bounds(&w), (v18, v18));
        w.create_virtual_dataset("/v", &vds, Default::default(), None, maps)
            .unwrap();
        assert_eq!(bounds(&w), (v18, v18));
        w.group("/after").unwrap();
        w.finish(false).unwrap();
    }

    #[test]
    fn same_file_sources_follow_their_unit() {
        let units = vec![
            ("/run".to_string(), "/run".to_string()),
            ("/lost+found/g1".to_string(), "/lost+found/w/g1".to_string()),
            (
                "/lost+found/g10".to_string(),
                "/lost+found/w/g10".to_string(),
            ),
        ];
        let at = |p: &str| unit_path(&units, p);
        assert_eq!(at("/run/data").as_deref(), Some("/run/data"));
        assert_eq!(at("/lost+found/g1").as_deref(), Some("/lost+found/w/g1"));
        assert_eq!(
            at("/lost+found/g10/d").as_deref(),
            Some("/lost+found/w/g10/d")
        );
        assert_eq!(at("/running/data"), None);
        assert_eq!(at("/init/x"), None);
    }
}
