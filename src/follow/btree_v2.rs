//! Traversal of version 2 B-trees (spec III.A.2): every record reachable from
//! a header, in key order, with visit, depth and size bounds. Headers, nodes
//! and records are parsed by [`crate::format::btree_v2`].

use std::collections::HashSet;

use super::Image;
use crate::format::btree_v2::*;
use crate::format::{is_undefined, Error};

/// Reads the header at `header_addr` (relative) and every record reachable
/// from its root, in key order. Each node is visited once, children must sit
/// exactly one level lower, the walk never goes deeper than the header's
/// depth and reads at most as many nodes as the file can hold. Nodes with a
/// bad checksum or any other fault are reported and skipped; the walk goes
/// on with their siblings. A header with a bad checksum is reported and still
/// used (the nodes' own checksums then decide).
pub fn collect_records(
    image: &Image,
    header_addr: u64,
    ctx: RecordContext,
) -> (Option<BtreeV2Header>, Vec<Record>, Vec<Error>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let sizes = image.sizes;
    let habs = image.absolute(header_addr).unwrap_or(header_addr);
    let hdr = match image
        .at(HEADER, header_addr)
        .and_then(|d| parse_header(d, habs, sizes))
    {
        Ok(h) => h,
        Err(e) => return (None, records, vec![e]),
    };
    if hdr.checksum_ok {
        image.known(HEADER, header_addr, header_size(sizes));
    } else {
        errors.push(Error::invalid(
            HEADER,
            habs,
            "checksum mismatch; header used anyway",
        ));
    }
    let tree = match Tree::new(hdr.clone(), habs, sizes, ctx) {
        Ok(t) => t,
        Err(e) => {
            errors.push(e);
            return (Some(hdr), records, errors);
        }
    };
    if is_undefined(hdr.root_address) {
        return (Some(hdr), records, errors);
    }
    let mut budget = image.len() / u64::from(hdr.node_size).max(1) + 1;
    let mut visited = HashSet::new();
    // Work items: a node to open, or a record of an already opened internal
    // node to emit between its children (keeps key order).
    enum Item {
        Node(u64, u16, u64),
        Emit(Record),
    }
    let mut stack = vec![Item::Node(
        hdr.root_address,
        hdr.depth,
        u64::from(hdr.root_records),
    )];
    while let Some(item) = stack.pop() {
        let (addr, depth, nrec) = match item {
            Item::Emit(r) => {
                records.push(r);
                continue;
            }
            Item::Node(a, d, n) => (a, d, n),
        };
        let abs = image.absolute(addr).unwrap_or(addr);
        let structure = if depth == 0 { LEAF } else { INTERNAL };
        if !visited.insert(addr) {
            errors.push(Error::invalid(
                structure,
                abs,
                "node reached twice; skipped",
            ));
            continue;
        }
        if budget == 0 {
            errors.push(Error::invalid(
                structure,
                abs,
                "more nodes than the file can hold; stopped",
            ));
            break;
        }
        budget -= 1;
        if visited.len() > 1 {
            image.release();
        }
        let node = match image
            .at(structure, addr)
            .and_then(|d| parse_node(d, abs, &tree, depth, nrec))
        {
            Ok(n) if n.checksum_ok => {
                // Every node is allocated at the header's node size (spec
                // III.A.2 "Node Size").
                image.known(structure, addr, u64::from(hdr.node_size));
                n
            }
            Ok(_) => {
                errors.push(Error::invalid(
                    structure,
                    abs,
                    "checksum mismatch; node skipped",
                ));
                continue;
            }
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if depth == 0 {
            records.extend(node.records);
            continue;
        }
        // Push in reverse so that child 0, record 0, child 1, ... pop in order.
        let mut items = Vec::with_capacity(node.children.len() * 2);
        let mut recs = node.records.into_iter();
        for (i, child) in node.children.iter().enumerate() {
            if i > 0 {
                if let Some(r) = recs.next() {
                    items.push(Item::Emit(r));
                }
            }
            if is_undefined(child.address) {
                errors.push(Error::invalid(structure, abs, "undefined child address"));
            } else {
                items.push(Item::Node(child.address, depth - 1, child.records));
            }
        }
        stack.extend(items.into_iter().rev());
    }
    (Some(hdr), records, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::btree_v2::*;
    use crate::format::UNDEFINED;

    #[test]
    fn collects_a_two_level_tree_in_key_order() {
        let t = 5;
        let l0 = leaf(t, &[link_record(1, 1), link_record(2, 2)]);
        let l1 = leaf(t, &[link_record(4, 4)]);
        let l2 = leaf(t, &[link_record(6, 6), link_record(7, 7)]);
        let root = internal(
            t,
            &[link_record(3, 3), link_record(5, 5)],
            &[(1000, 2, None), (1200, 1, None), (1400, 2, None)],
            0,
        );
        let h = header(t, 200, 11, 1, 800, 2, 7);
        let f = file(
            2000,
            &[
                (100, &h),
                (800, &root),
                (1000, &l0),
                (1200, &l1),
                (1400, &l2),
            ],
        );
        let img = Image::new(&f, 0, S);
        let (hdr, recs, errors) = collect_records(&img, 100, RecordContext::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(hdr.unwrap().depth, 1);
        assert_eq!(hashes(&recs), vec![1, 2, 3, 4, 5, 6, 7]);

        // A bad checksum on one leaf: reported, siblings still read.
        let mut g = f.clone();
        g[1207] ^= 0xFF;
        let (_, recs, errors) =
            collect_records(&Image::new(&g, 0, S), 100, RecordContext::default());
        assert_eq!(hashes(&recs), vec![1, 2, 3, 5, 6, 7]);
        assert_eq!(errors.len(), 1, "{errors:?}");

        // Children that are the node itself, the same leaf twice, garbage,
        // and a count above the leaf maximum.
        let root = internal(
            t,
            &[
                link_record(3, 3),
                link_record(5, 5),
                link_record(9, 9),
                link_record(10, 10),
            ],
            &[
                (800, 2, None),
                (1000, 2, None),
                (1000, 2, None),
                (1600, 1, None),
                (1400, 200, None),
            ],
            0,
        );
        let h = header(t, 200, 11, 1, 800, 4, 7);
        let f = file(2000, &[(100, &h), (800, &root), (1000, &l0), (1400, &l2)]);
        let (_, recs, errors) =
            collect_records(&Image::new(&f, 0, S), 100, RecordContext::default());
        assert_eq!(hashes(&recs), vec![3, 1, 2, 5, 9, 10]);
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn depth_two_nodes_carry_totals() {
        let t = 5;
        let la = leaf(t, &[link_record(1, 1)]);
        let lb = leaf(t, &[link_record(3, 3)]);
        let twig = internal(
            t,
            &[link_record(2, 2)],
            &[(1000, 1, None), (1100, 1, None)],
            0,
        );
        let lc = leaf(t, &[link_record(5, 5)]);
        let twig2 = internal(t, &[], &[(1300, 1, None)], 0);
        // Node size 200, record 11: leaf max 17 (1 byte); twig max
        // (200-10-9)/20 = 9, cumulative 10*17+9 = 179 -> 1 byte.
        let root = internal(
            t,
            &[link_record(4, 4)],
            &[(900, 1, Some(3)), (1200, 0, Some(1))],
            1,
        );
        let h = header(t, 200, 11, 2, 800, 1, 5);
        let f = file(
            2000,
            &[
                (0, &h),
                (800, &root),
                (900, &twig),
                (1000, &la),
                (1100, &lb),
                (1200, &twig2),
                (1300, &lc),
            ],
        );
        let (_, recs, errors) = collect_records(&Image::new(&f, 0, S), 0, RecordContext::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(hashes(&recs), vec![1, 2, 3, 4, 5]);
        let tree = Tree::new(
            parse_header(&h, 0, S).unwrap(),
            0,
            S,
            RecordContext::default(),
        )
        .unwrap();
        let n = parse_node(&root, 800, &tree, 2, 1).unwrap();
        assert_eq!(
            n.children[0],
            ChildPointer {
                address: 900,
                records: 1,
                total_records: Some(3)
            }
        );
        // Truncation at every length of every node kind.
        for (node, depth, nrec) in [(&root, 2, 1), (&twig, 1, 1), (&la, 0, 1)] {
            for len in 0..node.len() {
                assert!(
                    parse_node(&node[..len], 0, &tree, depth, nrec).is_err(),
                    "prefix {len}"
                );
            }
            assert!(parse_node(node, 0, &tree, depth, nrec).unwrap().checksum_ok);
        }
        // Wrong signature for the depth, wrong type, bad version, too many records.
        assert!(parse_node(&la, 0, &tree, 1, 1).is_err());
        let mut w = la.clone();
        w[5] = 6;
        assert!(parse_node(&w, 0, &tree, 0, 1).is_err());
        w[4] = 3;
        assert!(parse_node(&w, 0, &tree, 0, 1).is_err());
        assert!(parse_node(&la, 0, &tree, 0, 18).is_err());
        assert!(parse_node(&la, 0, &tree, 3, 1).is_err());
    }

    #[test]
    fn empty_and_broken_headers() {
        let h = header(5, 512, 11, 0, UNDEFINED, 0, 0);
        let f = file(100, &[(0, &h)]);
        let (hdr, recs, errors) =
            collect_records(&Image::new(&f, 0, S), 0, RecordContext::default());
        assert!(hdr.is_some() && recs.is_empty() && errors.is_empty());
        let (hdr, _, errors) = collect_records(&Image::new(&f, 0, S), 50, RecordContext::default());
        assert!(hdr.is_none() && errors.len() == 1);
        let (_, _, errors) =
            collect_records(&Image::new(&f, 0, S), UNDEFINED, RecordContext::default());
        assert_eq!(errors.len(), 1);
        // Bad header checksum: reported, tree still walked (root is garbage here).
        let mut bad = h.clone();
        bad[20] = 0;
        let f = file(100, &[(0, &bad)]);
        let (hdr, _, errors) = collect_records(&Image::new(&f, 0, S), 0, RecordContext::default());
        assert!(!hdr.unwrap().checksum_ok);
        assert_eq!(errors.len(), 2, "{errors:?}");
        // Hostile geometry.
        let h = header(5, 4, 11, 0, 0, 0, 0);
        let f = file(100, &[(0, &h)]);
        let (_, _, errors) = collect_records(&Image::new(&f, 0, S), 0, RecordContext::default());
        assert_eq!(errors.len(), 1);
    }

    /// Structures of a file (19094 bytes) written by h5py 3.16 / HDF5 2.0,
    /// `libver='latest'`:
    /// - `bt`: shape (4, 6), maxshape (None, None), chunks (2, 3), i2 ->
    ///   header at 1895 (type 10), leaf at 15510; chunks at 13162 + 12*i.
    /// - `btz`: the same with gzip and chunk (2, 3) written directly with
    ///   filter mask 1 -> header at 1981 (type 11, 8-byte chunk size: layout
    ///   v5), leaf at 4632; chunks 13210, 13222, 13234 and 2088, 12 bytes each.
    /// - group `dense` with links m00..m11 -> type 5 header at 8326, leaf 8446;
    ///   12 attributes a00..a11 on it -> type 8 header at 7647, leaf 9874.
    ///
    /// Offsets and sizes are those of `dset.id.get_chunk_info(i)`.
    #[test]
    fn real_h5py_trees() {
        let parts: Vec<(u64, Vec<u8>)> = vec![
            (1895, unhex(&["42544844000a00080000180000006428963c00000000000004000400000000000000150f6921"])),
            (15510, unhex(&[
                "42544c46000a6a3300000000000000000000000000000000000000000000763300000000000000000000000000000100",
                "0000000000008233000000000000010000000000000000000000000000008e3300000000000001000000000000000100",
                "000000000000aae77926",
            ])),
            (1981, unhex(&["42544844000b000800002400000064281812000000000000040004000000000000004aee818e"])),
            (4632, unhex(&[
                "42544c46000b9a330000000000000c000000000000000000000000000000000000000000000000000000a63300000000",
                "00000c000000000000000000000000000000000000000100000000000000b2330000000000000c000000000000000000",
                "00000100000000000000000000000000000028080000000000000c000000000000000100000001000000000000000100",
                "0000000000006c2bec37",
            ])),
            (8326, unhex(&["425448440005000200000b0000006428fe200000000000000c000c0000000000000037d93011"])),
            (8446, unhex(&[
                "42544c460005869eaa0400230000000e008e70fc1400690000000e004177492900150000000e00aa42d33000a1000000",
                "0e00a6610b34004d0000000e004bfd263d00930000000e0030ef023e00770000000e001597fe49005b0000000e0042c4",
                "955300310000000e00e3767d7800af0000000e00f1d73eb0003f0000000e001a96a7d700850000000e00d8b1d112",
            ])),
            (7647, unhex(&["4254484400080002000011000000642892260000000000000c000c00000000000000eb6417ac"])),
            (9874, unhex(&[
                "42544c460008001600000000250000ffff0000184ba642008801000000250000ffff00000ec674470060000000002500",
                "00ffff0000bea1f54700ad01000000250000ffff0000337a0554003b00000000250000ffff0000158f595500f4000000",
                "00250000ffff0000bbbaad72008500000000250000ffff00002db14d81003e01000000250000ffff0000ff44e3820063",
                "01000000250000ffff00004377f28e001901000000250000ffff00003aeec6c000aa00000000250000ffff0000fa83b9",
                "e600cf00000000250000ffff0000229b72f5ccb2ab4a",
            ])),
        ];
        let refs: Vec<(u64, &[u8])> = parts.iter().map(|(a, b)| (*a, b.as_slice())).collect();
        let f = file(19094, &refs);
        let img = Image::new(&f, 0, S);
        let ctx = RecordContext {
            rank: 2,
            chunk_size_len: 0,
        };

        let (hdr, recs, errors) = collect_records(&img, 1895, ctx);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(hdr.unwrap().btree_type, kind::CHUNK);
        let want: Vec<Record> = [(0, 0), (0, 1), (1, 0), (1, 1)]
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| Record::Chunk {
                address: 13162 + 12 * i as u64,
                size: None,
                filter_mask: 0,
                scaled_offsets: vec![a, b],
            })
            .collect();
        assert_eq!(recs, want);

        let (_, recs, errors) = collect_records(&img, 1981, ctx);
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<_> = recs
            .iter()
            .map(|r| match r {
                Record::Chunk {
                    address,
                    size,
                    filter_mask,
                    scaled_offsets,
                } => (
                    *address,
                    size.unwrap(),
                    *filter_mask,
                    scaled_offsets.clone(),
                ),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (13210, 12, 0, vec![0, 0]),
                (13222, 12, 0, vec![0, 1]),
                (13234, 12, 0, vec![1, 0]),
                (2088, 12, 1, vec![1, 1]),
            ]
        );

        let (_, recs, errors) = collect_records(&img, 8326, RecordContext::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut got = hashes(&recs);
        let mut want: Vec<u32> = (0..12)
            .map(|i| checksum(format!("m{i:02}").as_bytes()))
            .collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "link name hashes are lookup3 of the names");

        let (_, recs, errors) = collect_records(&img, 7647, RecordContext::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut got: Vec<u32> = recs
            .iter()
            .map(|r| match r {
                Record::AttributeName { hash, .. } => *hash,
                other => panic!("{other:?}"),
            })
            .collect();
        let mut want: Vec<u32> = (0..12)
            .map(|i| checksum(format!("a{i:02}").as_bytes()))
            .collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    /// The 1100-link group of the shared fixtures needs internal nodes
    /// (`testdata/many_members_latest.h5`).
    #[test]
    fn real_deep_tree_from_fixture() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/many_members_latest.h5");
        let bytes = std::fs::read(&path).expect("the fixture is in the repository");
        let img = Image::new(&bytes, 0, S);
        let mut found = false;
        for at in memchr::memmem::find_iter(&bytes, HEADER_SIGNATURE) {
            let Ok(h) = parse_header(&bytes[at..], at as u64, S) else {
                continue;
            };
            if h.btree_type != kind::LINK_NAME || h.total_records < 1000 {
                continue;
            }
            let (_, recs, errors) = collect_records(&img, at as u64, RecordContext::default());
            assert!(errors.is_empty(), "{errors:?}");
            assert!(h.depth >= 1);
            assert_eq!(recs.len() as u64, h.total_records);
            found = true;
        }
        assert!(found);
    }

    /// Random single-byte corruptions of a valid two-level tree never panic
    /// and never yield more records than the tree holds.
    #[test]
    fn corruption_never_panics() {
        let t = 5;
        let l0 = leaf(t, &[link_record(1, 1), link_record(2, 2)]);
        let l1 = leaf(t, &[link_record(4, 4)]);
        let root = internal(
            t,
            &[link_record(3, 3)],
            &[(300, 2, None), (400, 1, None)],
            0,
        );
        let h = header(t, 100, 11, 1, 200, 1, 4);
        let f = file(500, &[(100, &h), (200, &root), (300, &l0), (400, &l1)]);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut g = f.clone();
            let pos = 100 + (x % 400) as usize;
            g[pos] = (x >> 32) as u8;
            let (_, recs, _) =
                collect_records(&Image::new(&g, 0, S), 100, RecordContext::default());
            assert!(recs.len() <= 4);
        }
    }
}
