//! A picture of the file: its bytes drawn as a grid of cells (one row of
//! [`COLUMNS`] cells after another), each cell coloured by what lies there.
//!
//! The byte extents come from two sources, kept apart from the walk and
//! the carver so that neither has to record them:
//! - the inventory: the superblock (spec II.A), every object header's spans
//!   ([`crate::inventory::Object::header_spans`]), every dataset's raw data
//!   (chunks listed by its index, a contiguous block, spec IV.A.2.i);
//! - one signature pass over the bytes ([`crate::carve::find_signatures`]),
//!   each hit kept only if [`crate::carve::validate`] accepts it, its extent
//!   read from the structure itself (spec III): B-tree nodes, symbol table
//!   nodes, heaps and their data segments, checksummed fractal heap direct
//!   blocks, chunk index blocks. Where the structure alone does not give
//!   its length (v2 B-tree nodes, fractal heap indirect blocks, array
//!   blocks) only its fixed prefix is drawn.
//!
//! A metadata cache image block is drawn as such (its entries' images
//! inside it as what they are).
//!
//! Bytes nothing claims are "zeroed" when every byte of the cell is zero,
//! "unclaimed" otherwise; cells past the end of a truncated file (up to the
//! stored end-of-file address) are "missing". Every problem with a file
//! offset is marked in red, and the headers of partial or lost objects are
//! outlined in red. The SVG is written directly (no dependency).

use std::io::{self, Write};
use std::path::Path;

use crate::carve::validate::{validate_all, Validated};
use crate::carve::{find_signatures, Hit, Kind};
use crate::follow::Image;
use crate::format::message::data_layout::LayoutClass;
use crate::format::{btree_v1, global_heap, is_undefined, local_heap, symbol_table_node, Sizes};
use crate::inventory::{Inventory, Status};
use crate::pipeline::{CarveMode, Input};

/// Cells per row.
pub const COLUMNS: u64 = 880;
/// Most rows drawn (a larger file gets more bytes per cell).
pub const MAX_ROWS: u64 = 32;
/// Left edge of the grid (room for the row offsets).
pub const LEFT: u64 = 100;
/// Top edge of the grid (room for the title).
pub const TOP: u64 = 52;
/// Height of a row, and the gap below it.
pub const ROW_HEIGHT: u64 = 14;
pub const ROW_GAP: u64 = 6;
/// Width of the picture.
pub const WIDTH: u64 = LEFT + COLUMNS + 20;

/// What a byte range holds. The order is the drawing priority: a cell
/// shared by several kinds shows the greatest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RegionKind {
    /// Nothing known claims these bytes (and they are not all zero).
    Unclaimed,
    /// Nothing claims these bytes and they are all zero.
    Zeroed,
    /// Dataset raw data (chunks, contiguous blocks).
    RawData,
    /// Local, global and fractal heap blocks (names, vlen data, links).
    Heap,
    /// B-tree nodes, symbol table nodes, chunk index blocks.
    Index,
    /// A metadata cache image block (`MDCI`): metadata libhdf5 keeps there
    /// instead of at its own addresses ([`crate::follow::cache_image`]).
    CacheImage,
    /// Object headers and their continuation blocks.
    ObjectHeader,
    /// The superblock.
    Superblock,
    /// Past the end of a truncated file (up to the stored end of file).
    Missing,
}

impl RegionKind {
    pub const ALL: [RegionKind; 9] = [
        RegionKind::Superblock,
        RegionKind::ObjectHeader,
        RegionKind::CacheImage,
        RegionKind::Index,
        RegionKind::Heap,
        RegionKind::RawData,
        RegionKind::Unclaimed,
        RegionKind::Zeroed,
        RegionKind::Missing,
    ];

    /// Fill colour (`#rrggbb`).
    pub fn colour(self) -> &'static str {
        match self {
            RegionKind::Unclaimed => "#bdbdbd",
            RegionKind::Zeroed => "#fffbe6",
            RegionKind::RawData => "#a6cee3",
            RegionKind::Heap => "#ff7f00",
            RegionKind::Index => "#33a02c",
            RegionKind::CacheImage => "#b15928",
            RegionKind::ObjectHeader => "#1f78b4",
            RegionKind::Superblock => "#6a3d9a",
            RegionKind::Missing => "#252525",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RegionKind::Unclaimed => "unclaimed bytes",
            RegionKind::Zeroed => "zeroed",
            RegionKind::RawData => "raw data",
            RegionKind::Heap => "heap",
            RegionKind::Index => "B-tree / index node",
            RegionKind::CacheImage => "metadata cache image",
            RegionKind::ObjectHeader => "object header",
            RegionKind::Superblock => "superblock",
            RegionKind::Missing => "missing (past the end)",
        }
    }
}

/// Colour of damage marks.
pub const DAMAGE_COLOUR: &str = "#e31a1c";

/// One claimed byte range `[start, end)` (absolute file offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub kind: RegionKind,
}

/// Where bytes land in the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// Bytes drawn: the file size, or the stored end of file if larger.
    pub extent: u64,
    /// Bytes per cell (at least 1).
    pub bytes_per_cell: u64,
    pub rows: u64,
}

impl Grid {
    pub fn new(extent: u64) -> Grid {
        let cells = COLUMNS * MAX_ROWS;
        let bytes_per_cell = extent.div_ceil(cells).max(1);
        let rows = extent.div_ceil(bytes_per_cell * COLUMNS).max(1);
        Grid {
            extent,
            bytes_per_cell,
            rows,
        }
    }

    /// Cells in the grid.
    pub fn cells(&self) -> u64 {
        self.rows * COLUMNS
    }

    /// The cell holding byte `offset`.
    pub fn cell(&self, offset: u64) -> u64 {
        offset / self.bytes_per_cell
    }

    /// The pixel at the centre of byte `offset`'s cell (x, y).
    pub fn pixel(&self, offset: u64) -> (u64, u64) {
        let c = self.cell(offset);
        (
            LEFT + c % COLUMNS,
            Self::row_top(c / COLUMNS) + ROW_HEIGHT / 2,
        )
    }

    fn row_top(row: u64) -> u64 {
        TOP + row * (ROW_HEIGHT + ROW_GAP)
    }

    /// Height of the whole picture (legend included).
    pub fn height(&self) -> u64 {
        Self::row_top(self.rows) + 30 + 18 * (RegionKind::ALL.len() as u64 + 1).div_ceil(3)
    }
}

/// The regions the inventory and a signature pass over `bytes` account
/// for (see the module note), unsorted and possibly overlapping.
pub fn regions(inv: &Inventory, bytes: &[u8]) -> Vec<Region> {
    let mut out = Vec::new();
    let mut push = |start: u64, len: u64, kind| {
        if len > 0 {
            out.push(Region {
                start,
                end: start.saturating_add(len),
                kind,
            });
        }
    };
    let (base, sizes) = match &inv.superblock {
        Some(sb) => (
            sb.base_address,
            Sizes::new(sb.size_of_offsets, sb.size_of_lengths).unwrap_or(Sizes::DEFAULT),
        ),
        None => (0, Sizes::DEFAULT),
    };
    if let Some(sb) = &inv.superblock {
        push(
            sb.offset,
            superblock_len(sb.version, sizes),
            RegionKind::Superblock,
        );
    }
    for obj in &inv.objects {
        for &(s, e) in &obj.header_spans {
            push(s, e.saturating_sub(s), RegionKind::ObjectHeader);
        }
        let Some(ds) = &obj.dataset else { continue };
        for c in &ds.chunks {
            push(base.saturating_add(c.address), c.size, RegionKind::RawData);
        }
        if let LayoutClass::Contiguous {
            address,
            size: Some(size),
        } = ds.layout.class
        {
            if !is_undefined(address) {
                push(base.saturating_add(address), size, RegionKind::RawData);
            }
        }
    }
    if let Some((s, l)) = inv.cache_image.and_then(|c| c.block) {
        push(s, l, RegionKind::CacheImage);
    }
    let image = Image::new(bytes, base, sizes);
    let checked = validate_all(&image, &find_signatures(bytes));
    for &(hit, _) in &checked.valid {
        if hit.kind == Kind::Superblock {
            continue;
        }
        for (start, len, kind) in node_extents(&image, hit, &checked) {
            push(start, len, kind);
        }
    }
    out
}

/// Spec II.A: v0/v1 superblocks end with the root's symbol table entry,
/// v2/v3 with a checksum.
fn superblock_len(version: u8, sizes: Sizes) -> u64 {
    let o = u64::from(sizes.offset());
    match version {
        0 => 24 + 4 * o + (2 * o + 24),
        1 => 28 + 4 * o + (2 * o + 24),
        _ => 16 + 4 * o,
    }
}

/// The byte ranges of one validated metadata structure (spec III);
/// `checked`: the validation's findings (block lengths).
fn node_extents(image: &Image, hit: Hit, checked: &Validated) -> Vec<(u64, u64, RegionKind)> {
    let at = hit.offset;
    let Some(data) = usize::try_from(at).ok().and_then(|o| image.bytes.get(o..)) else {
        return Vec::new();
    };
    let o = u64::from(image.sizes.offset());
    let l = u64::from(image.sizes.length());
    match hit.kind {
        Kind::Tree => {
            // III.A.1: 8 + 2 siblings, then keys and children interleaved;
            // only the used entries are counted (K is not in the node).
            let ranks: &[usize] = if data.get(4) == Some(&btree_v1::NODE_TYPE_CHUNK) {
                &[1, 2, 3, 4, 5, 6, 7, 8]
            } else {
                &[0]
            };
            for &r in ranks {
                if let Ok(n) = btree_v1::parse(data, at, image.sizes, Some(r)) {
                    let key = if r == 0 { l } else { 8 + 8 * (r as u64 + 1) };
                    let used = u64::from(n.entries_used);
                    let len = 8 + 2 * o + (used + 1) * key + used * o;
                    return vec![(at, len, RegionKind::Index)];
                }
            }
            Vec::new()
        }
        Kind::Snod => match symbol_table_node::parse(data, at, image.sizes) {
            // III.B: 8-byte prefix, entries of 2 offsets + 24 bytes.
            Ok(n) => vec![(
                at,
                8 + n.entries.len() as u64 * (2 * o + 24),
                RegionKind::Index,
            )],
            Err(_) => Vec::new(),
        },
        Kind::Heap => match local_heap::parse(data, at, image.sizes) {
            // III.D: the header, and its data segment elsewhere.
            Ok(h) => {
                let mut v = vec![(at, 8 + 2 * l + o, RegionKind::Heap)];
                if let Some(seg) = image.absolute(h.data_address) {
                    v.push((seg, h.data_size, RegionKind::Heap));
                }
                v
            }
            Err(_) => Vec::new(),
        },
        Kind::Gcol => match global_heap::parse(data, at, image.sizes) {
            Ok(g) => vec![(at, g.collection_size, RegionKind::Heap)],
            Err(_) => Vec::new(),
        },
        Kind::Ochk => match checked.ochk.get(&at) {
            Some(&(len, _)) => vec![(at, len as u64 + 4, RegionKind::ObjectHeader)],
            None => Vec::new(),
        },
        Kind::Ohdr => vec![(at, 16, RegionKind::ObjectHeader)],
        Kind::Frhp => match crate::format::fractal_heap::parse_header(data, at, image.sizes) {
            Ok(h) => vec![(at, h.size, RegionKind::Heap)],
            Err(_) => Vec::new(),
        },
        Kind::Fhdb => {
            // III.G: a checksummed direct block's size is the power of two
            // its checksum matches (as the carver validates it).
            let size = checked.fhdb.get(&at).copied();
            vec![(at, size.unwrap_or(5 + o), RegionKind::Heap)]
        }
        Kind::Fhib => vec![(at, 5 + o, RegionKind::Heap)],
        Kind::Bthd | Kind::Btin | Kind::Btlf => vec![(at, 6, RegionKind::Index)],
        Kind::Fahd | Kind::Fadb | Kind::Eahd | Kind::Eaib | Kind::Easb | Kind::Eadb => {
            vec![(at, 6 + o, RegionKind::Index)]
        }
        Kind::Superblock => Vec::new(),
    }
}

/// The kind of every cell of `grid`: the greatest kind claiming any byte
/// of the cell. One difference array per kind keeps this linear in
/// regions plus cells, however large or many the regions are.
pub fn paint(grid: &Grid, regions: &[Region], bytes: &[u8]) -> Vec<RegionKind> {
    let n = grid.cells() as usize;
    let kinds = RegionKind::ALL.len();
    let mut diff = vec![0i64; kinds * (n + 1)];
    for r in regions {
        let end = r.end.min(grid.extent);
        if r.start >= end {
            continue;
        }
        let first = grid.cell(r.start) as usize;
        let last = (grid.cell(end - 1) as usize).min(n - 1);
        let k = r.kind as usize * (n + 1);
        diff[k + first] += 1;
        diff[k + last + 1] -= 1;
    }
    let mut running = vec![0i64; kinds];
    let size = bytes.len() as u64;
    let bpc = grid.bytes_per_cell;
    (0..n)
        .map(|i| {
            let mut best = None;
            for (j, run) in running.iter_mut().enumerate() {
                *run += diff[j * (n + 1) + i];
                if *run > 0 {
                    best = best.max(Some(j));
                }
            }
            let start = (i as u64).saturating_mul(bpc);
            if start >= size {
                // Past the end of the file (only drawn up to the extent).
                return RegionKind::Missing;
            }
            if let Some(j) = best {
                return KIND_ORDER[j];
            }
            let end = start.saturating_add(bpc).min(size);
            let all_zero = bytes
                .get(start as usize..end as usize)
                .is_some_and(|b| b.iter().all(|&x| x == 0));
            if all_zero {
                RegionKind::Zeroed
            } else {
                RegionKind::Unclaimed
            }
        })
        .collect()
}

/// The kinds by their discriminant (`kind as usize` indexes this).
const KIND_ORDER: [RegionKind; 9] = [
    RegionKind::Unclaimed,
    RegionKind::Zeroed,
    RegionKind::RawData,
    RegionKind::Heap,
    RegionKind::Index,
    RegionKind::CacheImage,
    RegionKind::ObjectHeader,
    RegionKind::Superblock,
    RegionKind::Missing,
];

/// Writes the picture of `inv` (built from `bytes`) as SVG.
pub fn write_svg(inv: &Inventory, bytes: &[u8], out: &mut dyn Write) -> io::Result<()> {
    let size = bytes.len() as u64;
    let stored = inv.superblock.as_ref().map(|s| s.eof_address);
    let extent = stored.unwrap_or(0).max(size).max(1);
    let grid = Grid::new(extent);
    let regs = regions(inv, bytes);
    let cells = paint(&grid, &regs, bytes);
    let (w, h) = (WIDTH, grid.height());
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11" shape-rendering="crispEdges">"#
    )?;
    writeln!(out, r##"<rect width="{w}" height="{h}" fill="#fafafa"/>"##)?;
    let title = format!(
        "{}: {} bytes{}, {}; one cell = {} byte{}",
        inv.file,
        size,
        match stored {
            Some(e) if e > size => format!(" of {e} (truncated: {} missing)", e - size),
            Some(e) => format!(" (stored end of file {e})"),
            None => " (no superblock)".to_string(),
        },
        inv.verdict().as_str(),
        grid.bytes_per_cell,
        if grid.bytes_per_cell == 1 { "" } else { "s" }
    );
    writeln!(
        out,
        r#"<text x="10" y="20" font-size="13">{}</text>"#,
        esc(&title)
    )?;
    let marked = problem_offsets(inv);
    writeln!(
        out,
        r#"<text x="10" y="38">{} objects, {} damage marks (red)</text>"#,
        inv.objects.len(),
        marked.len()
    )?;
    let drawn = (grid.cell(extent - 1) + 1) as usize;
    for row in 0..grid.rows {
        let y = Grid::row_top(row);
        let offset = (row * COLUMNS).saturating_mul(grid.bytes_per_cell);
        writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end" font-family="monospace">0x{offset:x}</text>"#,
            LEFT - 6,
            y + ROW_HEIGHT - 3
        )?;
        let row_cells =
            &cells[(row * COLUMNS) as usize..(((row + 1) * COLUMNS) as usize).min(drawn)];
        let mut col = 0usize;
        while col < row_cells.len() {
            let kind = row_cells[col];
            let run = row_cells[col..].iter().take_while(|&&k| k == kind).count();
            writeln!(
                out,
                r#"<rect x="{}" y="{y}" width="{run}" height="{ROW_HEIGHT}" fill="{}"/>"#,
                LEFT + col as u64,
                kind.colour()
            )?;
            col += run;
        }
    }
    // Damaged objects: their header spans outlined.
    for obj in inv.objects.iter().filter(|o| o.status != Status::Intact) {
        for &(s, e) in &obj.header_spans {
            outline(out, &grid, s, e)?;
        }
    }
    // Problems: a red tick over the cell of each offset.
    for &off in marked.iter().filter(|&&o| o < extent) {
        let (x, y) = grid.pixel(off);
        writeln!(
            out,
            r##"<path d="M{} {} l3 -5 h-6 z M{x} {} v{}" stroke="{DAMAGE_COLOUR}" fill="{DAMAGE_COLOUR}"/>"##,
            x,
            y - ROW_HEIGHT / 2,
            y - ROW_HEIGHT / 2,
            ROW_HEIGHT
        )?;
    }
    legend(out, &grid)?;
    writeln!(out, "</svg>")
}

/// Scans `path` like [`crate::scan_path_with`] and writes its picture to
/// `svg` (through a temporary file beside it, renamed when complete).
pub fn scan_with_map(
    path: &Path,
    mode: CarveMode,
    chunks: &crate::carve::chunks::Options,
    svg: &Path,
) -> io::Result<Inventory> {
    let input = Input::open(path)?;
    let inv = input.inventory_with(&path.display().to_string(), mode, chunks)?;
    let mut text = Vec::new();
    write_svg(&inv, input.bytes(), &mut text)?;
    let name = svg.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = svg.with_file_name(format!(
        ".{}.h5salvage-tmp-{}",
        name.unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, &text)
        .and_then(|()| std::fs::rename(&tmp, svg))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", svg.display())))?;
    Ok(inv)
}

/// Distinct file offsets of every problem (file-level and per object), at
/// most one per cell pixel column would not matter: capped at 10000.
fn problem_offsets(inv: &Inventory) -> Vec<u64> {
    let mut v: Vec<u64> = inv
        .problems
        .iter()
        .chain(inv.objects.iter().flat_map(|o| o.problems.iter()))
        .filter_map(|p| p.offset)
        .collect();
    v.sort_unstable();
    v.dedup();
    v.truncate(10_000);
    v
}

fn outline(out: &mut dyn Write, grid: &Grid, start: u64, end: u64) -> io::Result<()> {
    let end = end.min(grid.extent);
    if start >= end {
        return Ok(());
    }
    let (first, last) = (grid.cell(start), grid.cell(end - 1));
    for row in first / COLUMNS..=last / COLUMNS {
        let a = first.max(row * COLUMNS) % COLUMNS;
        let b = last.min(row * COLUMNS + COLUMNS - 1) % COLUMNS;
        writeln!(
            out,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="{DAMAGE_COLOUR}" stroke-width="2"/>"#,
            LEFT + a,
            Grid::row_top(row),
            b - a + 1,
            ROW_HEIGHT
        )?;
    }
    Ok(())
}

fn legend(out: &mut dyn Write, grid: &Grid) -> io::Result<()> {
    let top = Grid::row_top(grid.rows) + 14;
    let entries = RegionKind::ALL
        .iter()
        .map(|k| (k.colour(), k.label()))
        .chain([(DAMAGE_COLOUR, "damaged structure")]);
    for (i, (colour, label)) in entries.enumerate() {
        let (x, y) = (LEFT + 300 * (i as u64 % 3), top + 18 * (i as u64 / 3));
        writeln!(
            out,
            r##"<rect x="{x}" y="{y}" width="14" height="12" fill="{colour}" stroke="#555"/><text x="{}" y="{}">{}</text>"##,
            x + 20,
            y + 10,
            esc(label)
        )?;
    }
    Ok(())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_caps_rows_and_covers_the_extent() {
        let g = Grid::new(10);
        assert_eq!((g.bytes_per_cell, g.rows), (1, 1));
        let g = Grid::new(COLUMNS * MAX_ROWS * 3 + 1);
        assert_eq!(g.bytes_per_cell, 4);
        assert!(g.rows <= MAX_ROWS);
        assert!(g.cell(g.extent - 1) < g.cells());
    }

    #[test]
    fn kind_order_matches_the_discriminants() {
        for (i, k) in KIND_ORDER.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn hostile_extents_stay_bounded() {
        let bytes = vec![1u8; 64];
        let g = Grid::new(u64::MAX);
        let regs: Vec<Region> = (0..100_000)
            .map(|i| Region {
                start: i,
                end: u64::MAX,
                kind: RegionKind::RawData,
            })
            .collect();
        let cells = paint(&g, &regs, &bytes);
        assert_eq!(cells[0], RegionKind::RawData);
        assert_eq!(cells[1], RegionKind::Missing);
        let mut svg = Vec::new();
        let inv = Inventory::default();
        write_svg(&inv, &bytes, &mut svg).unwrap();
    }

    #[test]
    fn paint_marks_past_the_end_missing_and_zeroes_zeroed() {
        let mut bytes = vec![0u8; 100];
        bytes[50..60].fill(7);
        let g = Grid::new(200);
        let regs = [Region {
            start: 0,
            end: 10,
            kind: RegionKind::Superblock,
        }];
        let cells = paint(&g, &regs, &bytes);
        assert_eq!(cells[0], RegionKind::Superblock);
        assert_eq!(cells[20], RegionKind::Zeroed);
        assert_eq!(cells[55], RegionKind::Unclaimed);
        assert_eq!(cells[150], RegionKind::Missing);
    }
}
