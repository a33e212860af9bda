//! Files written by the hdf5 crate (Debian's libhdf5), scanned by the walker
//! and compared with what the same library reads back.

use std::path::Path;

use h5salvage::inventory::{ObjectKind, Status, Verdict};

/// Writes a worker-like file with the hdf5 crate; `latest` selects the
/// library's newest format (v2 headers, new-style groups, new chunk indexes).
fn write_fixture(path: &Path, latest: bool) -> hdf5::Result<()> {
    let f = if latest {
        hdf5::File::with_options()
            .with_fapl(|p| p.libver_latest())
            .create(path)?
    } else {
        hdf5::File::create(path)?
    };
    let init = f.create_group("init")?;
    init.new_attr::<i64>()
        .create("seed")?
        .write_scalar(&42i64)?;
    for i in 0..12 {
        let g = f.create_group(&format!("config_{i:04}"))?;
        let data: Vec<f64> = (0..60).map(|x| f64::from(x) * 0.5 + f64::from(i)).collect();
        let arr = ndarray::Array2::from_shape_vec((20, 3), data).unwrap();
        g.new_dataset_builder()
            .with_data(&arr)
            .create("contiguous")?;
        g.new_dataset_builder()
            .chunk((5, 3))
            .shuffle()
            .deflate(4)
            .with_data(&arr)
            .create("chunked_gzip")?;
        g.new_dataset::<i32>()
            .shape((100,))
            .chunk((10,))
            .create("unwritten")?;
        g.new_dataset::<i32>()
            .shape((0.., 4))
            .chunk((8, 4))
            .create("resizable")?;
        g.new_attr::<f64>().create("score")?.write_scalar(&1.5)?;
        let note: hdf5::types::VarLenUnicode = "hello".parse().unwrap();
        g.new_attr::<hdf5::types::VarLenUnicode>()
            .create("note")?
            .write_scalar(&note)?;
    }
    f.new_attr::<i64>()
        .shape(3)
        .create("ints")?
        .write_raw(&[1i64, 2, 3])?;
    f.close()
}

fn check(latest: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(if latest {
        "crate_latest.h5"
    } else {
        "crate_default.h5"
    });
    write_fixture(&path, latest).unwrap();
    let inv = h5salvage::scan_path(&path).unwrap();
    assert_eq!(inv.verdict(), Verdict::Healthy, "{:?}", inv.problems);

    // Other test threads spawn python children that inherit open HDF5 file
    // descriptors (and their locks): read without taking the lock.
    let f = hdf5::File::with_options()
        .with_fapl(|p| p.file_locking(false))
        .open(&path)
        .unwrap();
    let mut expected = vec!["/".to_string()];
    for name in f.member_names().unwrap() {
        expected.push(format!("/{name}"));
        let g = f.group(&name).unwrap();
        for child in g.member_names().unwrap() {
            expected.push(format!("/{name}/{child}"));
        }
    }
    expected.sort();
    let mut got: Vec<String> = inv.objects.iter().map(|o| o.path.clone()).collect();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(
        inv.object("/").unwrap().attributes.len(),
        f.attr_names().unwrap().len()
    );

    for o in &inv.objects {
        assert_eq!(o.status, Status::Intact, "{}: {:?}", o.path, o.problems);
        if o.kind != ObjectKind::Dataset {
            continue;
        }
        let ds = f.dataset(&o.path).unwrap();
        let info = o.dataset.as_ref().unwrap();
        let shape: Vec<u64> = ds.shape().iter().map(|&d| d as u64).collect();
        assert_eq!(info.dataspace.dims, shape, "{}", o.path);
        if let Some(n) = ds.num_chunks() {
            assert_eq!(info.coverage.chunks_total, Some(n as u64), "{}", o.path);
            assert_eq!(info.coverage.chunks_present, Some(n as u64), "{}", o.path);
        }
    }
    let g = inv.object("/config_0003").unwrap();
    let mut names: Vec<&str> = g.attributes.iter().map(|a| a.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["note", "score"]);
}

#[test]
fn default_format_written_by_the_hdf5_crate() {
    check(false);
}

#[test]
fn latest_format_written_by_the_hdf5_crate() {
    check(true);
}
