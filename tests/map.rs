//! `scan --map`: the SVG picture of a file, rendered to PNG by rsvg-convert
//! and checked pixel by pixel where the bytes are known (the part past the
//! end of a truncated file, the superblock, a zeroed first page).

mod common;

use common::{bin, have_tool, testdata};

use std::path::Path;
use std::process::Command;

use h5salvage::report::map::{Grid, RegionKind, DAMAGE_COLOUR};

struct Picture {
    width: usize,
    rgb: Vec<[u8; 3]>,
}

impl Picture {
    fn at(&self, (x, y): (u64, u64)) -> [u8; 3] {
        self.rgb[y as usize * self.width + x as usize]
    }
}

fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// Runs `scan --map` on `input`, renders the SVG and decodes the PNG.
fn picture(input: &Path, dir: &Path) -> (i32, Picture) {
    let svg = dir.join("map.svg");
    let png_path = dir.join("map.png");
    let out = Command::new(bin())
        .arg("scan")
        .arg("--map")
        .arg(&svg)
        .arg(input)
        .output()
        .expect("run h5salvage");
    let code = out.status.code().unwrap_or(-1);
    let st = Command::new("rsvg-convert")
        .arg(&svg)
        .arg("-b")
        .arg("white")
        .arg("-o")
        .arg(&png_path)
        .status()
        .expect("run rsvg-convert");
    assert!(st.success());
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (
        code,
        Picture {
            width: info.width as usize,
            rgb,
        },
    )
}

/// Colours of the cells holding bytes `range` (one sample per cell).
fn cells(p: &Picture, grid: &Grid, range: std::ops::Range<u64>) -> Vec<[u8; 3]> {
    let bpc = grid.bytes_per_cell;
    (range.start.div_ceil(bpc)..range.end / bpc)
        .map(|c| p.at(grid.pixel(c * bpc)))
        .collect()
}

fn share(v: &[[u8; 3]], colour: [u8; 3]) -> f64 {
    v.iter().filter(|&&c| c == colour).count() as f64 / v.len().max(1) as f64
}

#[test]
fn truncated_file_shows_the_missing_part_and_the_damage() {
    if !have_tool("rsvg-convert", "map pictures") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let healthy = std::fs::read(testdata().join("worker_earliest.h5")).unwrap();
    let size = healthy.len() as u64 * 6 / 10;
    let cut = dir.path().join("cut.h5");
    std::fs::write(&cut, &healthy[..size as usize]).unwrap();
    let (code, pic) = picture(&cut, dir.path());
    assert_eq!(code, 1, "a truncated file is damaged");
    let grid = Grid::new(healthy.len() as u64);
    let missing = rgb(RegionKind::Missing.colour());
    // Past the end: the "missing" colour (a damage tick may cover a cell).
    let past = cells(&pic, &grid, size + 1..healthy.len() as u64);
    assert!(share(&past, missing) > 0.95, "{}", share(&past, missing));
    // Inside the file: never "missing".
    let inside = cells(&pic, &grid, 0..size);
    assert_eq!(share(&inside, missing), 0.0);
    // The superblock at offset 0.
    assert_eq!(pic.at(grid.pixel(0)), rgb(RegionKind::Superblock.colour()));
    // Object headers and index nodes survive before the cut.
    for k in [
        RegionKind::ObjectHeader,
        RegionKind::Index,
        RegionKind::RawData,
    ] {
        assert!(share(&inside, rgb(k.colour())) > 0.01, "{k:?}");
    }
    // The damage is marked (red pixels above the grid's rows).
    let red = rgb(DAMAGE_COLOUR);
    assert!(pic.rgb.iter().filter(|&&c| c == red).count() > 12);
}

#[test]
fn healthy_file_has_no_missing_part_and_no_damage_mark() {
    if !have_tool("rsvg-convert", "map pictures") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = testdata().join("worker_earliest.h5");
    let size = std::fs::metadata(&input).unwrap().len();
    let (code, pic) = picture(&input, dir.path());
    assert_eq!(code, 0);
    let grid = Grid::new(size);
    let all = cells(&pic, &grid, 0..size);
    assert_eq!(share(&all, rgb(RegionKind::Missing.colour())), 0.0);
    // Red only in the legend's swatch (14 x 12 pixels).
    let red = rgb(DAMAGE_COLOUR);
    assert!(pic.rgb.iter().filter(|&&c| c == red).count() <= 14 * 12);
    // Nearly every byte of a healthy h5py file is accounted for.
    let unclaimed = share(&all, rgb(RegionKind::Unclaimed.colour()));
    assert!(unclaimed < 0.05, "{unclaimed}");
}

#[test]
fn lost_first_page_is_zeroed_and_the_rest_still_drawn() {
    if !have_tool("rsvg-convert", "map pictures") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = testdata().join("damaged/worker_no_superblock.h5");
    let size = std::fs::metadata(&input).unwrap().len();
    let (code, pic) = picture(&input, dir.path());
    assert_eq!(code, 1);
    let grid = Grid::new(size);
    let bytes = std::fs::read(&input).unwrap();
    let zeros = bytes.iter().take_while(|&&b| b == 0).count() as u64;
    assert!(zeros >= 2048, "{zeros}");
    let head = cells(&pic, &grid, 0..zeros);
    assert!(share(&head, rgb(RegionKind::Zeroed.colour())) > 0.95);
    let all = cells(&pic, &grid, 0..size);
    assert_eq!(share(&all, rgb(RegionKind::Superblock.colour())), 0.0);
    assert!(share(&all, rgb(RegionKind::ObjectHeader.colour())) > 0.1);
}

#[test]
fn map_draws_one_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .arg("scan")
        .arg("--map")
        .arg(dir.path().join("m.svg"))
        .arg(testdata().join("worker_earliest.h5"))
        .arg(testdata().join("worker_latest.h5"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("m.svg").exists());
}
